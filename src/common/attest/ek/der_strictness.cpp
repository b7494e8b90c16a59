#include "common/attest/ek/der_strictness.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

namespace kl::ek {
namespace {

struct Tlv {
  std::uint8_t tag = 0;
  ByteView whole;    // header + value
  ByteView value;
};

// Reads one TLV at the start of `in` in strict DER form; nullopt if it is not strict DER.
std::optional<Tlv> read_strict_tlv(ByteView in) {
  if (in.size() < 2) return std::nullopt;
  Tlv t;
  t.tag = in[0];
  if ((t.tag & 0x1f) == 0x1f) return std::nullopt;  // high tag numbers never occur in certificates
  std::size_t pos = 1;
  std::uint8_t first = in[pos++];
  std::size_t len = 0;
  if (first < 0x80) {
    len = first;
  } else {
    std::size_t n = first & 0x7f;
    if (n == 0 || n > 4) return std::nullopt;  // indefinite length, or absurdly long
    if (in.size() - pos < n) return std::nullopt;
    if (in[pos] == 0) return std::nullopt;  // leading zero in the length
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | in[pos++];
    if (len < 0x80) return std::nullopt;  // long form where short form fits
  }
  if (in.size() - pos < len) return std::nullopt;
  t.value = in.subspan(pos, len);
  t.whole = in.subspan(0, pos + len);
  return t;
}

std::optional<std::vector<Tlv>> read_children(ByteView value) {
  std::vector<Tlv> out;
  while (!value.empty()) {
    auto t = read_strict_tlv(value);
    if (!t) return std::nullopt;
    value = value.subspan(t->whole.size());
    out.push_back(*t);
  }
  return out;
}

bool less_encoding(const Tlv& a, const Tlv& b) {
  return std::lexicographical_compare(a.whole.begin(), a.whole.end(), b.whole.begin(), b.whole.end());
}

// Generic DER rules, recursively; `depth` bounds recursion on hostile input.
bool strict_tree(const Tlv& t, int depth) {
  if (depth > 32) return false;
  const bool constructed = (t.tag & 0x20) != 0;
  if (constructed) {
    auto kids = read_children(t.value);
    if (!kids) return false;
    for (const auto& k : *kids)
      if (!strict_tree(k, depth + 1)) return false;
    // Universal SET / SET OF: DER orders the elements by their encodings (X.690 11.6). This is the rule
    // Nuvoton's multi-valued RDNs (C+O+CN in one SET) break.
    if (t.tag == 0x31) {
      for (std::size_t i = 1; i < kids->size(); ++i)
        if (less_encoding((*kids)[i], (*kids)[i - 1])) return false;
    }
    return true;
  }
  switch (t.tag) {
    case 0x01:  // BOOLEAN
      return t.value.size() == 1 && (t.value[0] == 0x00 || t.value[0] == 0xff);
    case 0x02:  // INTEGER
      if (t.value.empty()) return false;
      if (t.value.size() > 1) {
        if (t.value[0] == 0x00 && (t.value[1] & 0x80) == 0) return false;
        if (t.value[0] == 0xff && (t.value[1] & 0x80) != 0) return false;
      }
      return true;
    case 0x03:  // BIT STRING: unused-bits octet present and < 8
      return !t.value.empty() && t.value[0] < 8 && !(t.value.size() == 1 && t.value[0] != 0);
    case 0x05:  // NULL
      return t.value.empty();
    default:
      return true;
  }
}

// X.509-specific DEFAULT rules: version v1 must be omitted, extension `critical FALSE` must be omitted.
bool strict_x509_defaults(const Tlv& cert) {
  auto top = read_children(cert.value);
  if (!top || top->empty() || (*top)[0].tag != 0x30) return false;
  auto tbs = read_children((*top)[0].value);
  if (!tbs) return false;
  for (const auto& field : *tbs) {
    if (field.tag == 0xa0) {  // [0] EXPLICIT Version
      auto v = read_children(field.value);
      if (!v || v->size() != 1) return false;
      const auto& iv = (*v)[0];
      if (iv.tag == 0x02 && iv.value.size() == 1 && iv.value[0] == 0) return false;
    }
    if (field.tag == 0xa3) {  // [3] EXPLICIT Extensions
      auto seq = read_children(field.value);
      if (!seq || seq->size() != 1) return false;
      auto exts = read_children((*seq)[0].value);
      if (!exts) return false;
      for (const auto& ext : *exts) {
        auto parts = read_children(ext.value);
        if (!parts) return false;
        for (const auto& p : *parts)
          if (p.tag == 0x01 && p.value.size() == 1 && p.value[0] == 0x00) return false;
      }
    }
  }
  return true;
}

}  // namespace

bool is_strict_der_certificate(ByteView der) {
  auto t = read_strict_tlv(der);
  if (!t || t->whole.size() != der.size() || t->tag != 0x30) return false;
  return strict_tree(*t, 0) && strict_x509_defaults(*t);
}

}  // namespace kl::ek
