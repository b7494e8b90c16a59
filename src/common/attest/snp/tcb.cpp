#include "common/attest/snp/tcb.hpp"

#include <cstdio>

namespace kl::snp {

namespace {
std::uint8_t byte_at(std::uint64_t v, int i) { return static_cast<std::uint8_t>(v >> (8 * i)); }
std::uint64_t at(std::uint8_t b, int i) { return static_cast<std::uint64_t>(b) << (8 * i); }
}  // namespace

TcbParts decode_tcb(std::uint64_t raw, Product product) {
  TcbParts t;
  if (uses_turin_tcb_layout(product)) {
    t.fmc = byte_at(raw, 0);
    t.bl = byte_at(raw, 1);
    t.tee = byte_at(raw, 2);
    t.snp = byte_at(raw, 3);
    t.ucode = byte_at(raw, 7);
    t.has_fmc = true;
  } else {
    t.bl = byte_at(raw, 0);
    t.tee = byte_at(raw, 1);
    t.snp = byte_at(raw, 6);
    t.ucode = byte_at(raw, 7);
  }
  return t;
}

std::uint64_t encode_tcb(const TcbParts& t, Product product) {
  if (uses_turin_tcb_layout(product))
    return at(t.fmc, 0) | at(t.bl, 1) | at(t.tee, 2) | at(t.snp, 3) | at(t.ucode, 7);
  return at(t.bl, 0) | at(t.tee, 1) | at(t.snp, 6) | at(t.ucode, 7);
}

bool tcb_at_least(const TcbParts& a, const TcbParts& b) {
  if (a.bl < b.bl || a.tee < b.tee || a.snp < b.snp || a.ucode < b.ucode) return false;
  if (a.has_fmc && b.has_fmc && a.fmc < b.fmc) return false;
  return true;
}

std::string tcb_text(const TcbParts& t) {
  std::string s = "bl=" + std::to_string(t.bl) + " tee=" + std::to_string(t.tee) + " snp=" + std::to_string(t.snp) +
                  " ucode=" + std::to_string(t.ucode);
  if (t.has_fmc) s += " fmc=" + std::to_string(t.fmc);
  return s;
}

std::string tcb_key(const TcbParts& t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "bl%02u-tee%02u-snp%02u-uc%02u", unsigned{t.bl}, unsigned{t.tee}, unsigned{t.snp},
                unsigned{t.ucode});
  std::string s = buf;
  if (t.has_fmc) {
    std::snprintf(buf, sizeof buf, "-fmc%02u", unsigned{t.fmc});
    s += buf;
  }
  return s;
}

}  // namespace kl::snp
