#include "common/attest/tpm/attest.hpp"

#include <string>

#include "common/attest/parse_error.hpp"

namespace kl::tpm {
namespace {

// Big-endian cursor that refuses to read past the end; every TPM2B size is checked against a cap
// before the bytes are taken, so a hostile length field can never cause an over-read.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  std::uint64_t uint(std::size_t n, const char* what) {
    need(n, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | data_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(uint(1, what)); }
  std::uint16_t u16(const char* what) { return static_cast<std::uint16_t>(uint(2, what)); }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(uint(4, what)); }
  std::uint64_t u64(const char* what) { return uint(8, what); }

  Bytes take(std::size_t n, const char* what) {
    need(n, what);
    Bytes out(data_.begin() + static_cast<std::ptrdiff_t>(pos_), data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return out;
  }
  Bytes tpm2b(std::size_t max, const char* what) {
    std::uint16_t size = u16(what);
    if (size > max)
      throw ParseError(std::string("TPMS_ATTEST: ") + what + " size " + std::to_string(size) + " exceeds " +
                       std::to_string(max));
    return take(size, what);
  }
  bool at_end() const { return pos_ == data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }

 private:
  void need(std::size_t n, const char* what) const {
    if (data_.size() - pos_ < n) throw ParseError(std::string("TPMS_ATTEST truncated in ") + what);
  }
  ByteView data_;
  std::size_t pos_ = 0;
};

// sizeof(TPMU_NAME) = sizeof(TPMT_HA) = 2 + 64; a digest is at most 64 bytes (SHA-512).
constexpr std::size_t kMaxName = 68;
constexpr std::size_t kMaxDigest = 64;
constexpr std::uint32_t kMaxPcrBanks = 16;
constexpr std::uint8_t kMaxSizeofSelect = 4;

}  // namespace

Attest parse_attest(ByteView tpms_attest) {
  Reader r(tpms_attest);
  Attest a;
  a.magic = r.u32("magic");
  a.type = r.u16("type");
  if (a.type != kStAttestQuote && a.type != kStAttestCertify)
    throw ParseError("TPMS_ATTEST: unsupported attestation type " + std::to_string(a.type));
  a.qualified_signer = r.tpm2b(kMaxName, "qualifiedSigner");
  a.extra_data = r.tpm2b(kMaxDigest, "extraData");
  a.clock.clock = r.u64("clockInfo.clock");
  a.clock.reset_count = r.u32("clockInfo.resetCount");
  a.clock.restart_count = r.u32("clockInfo.restartCount");
  std::uint8_t safe = r.u8("clockInfo.safe");
  if (safe > 1) throw ParseError("TPMS_ATTEST: clockInfo.safe is not a TPMI_YES_NO");
  a.clock.safe = safe == 1;
  a.firmware_version = r.u64("firmwareVersion");

  if (a.type == kStAttestCertify) {
    a.certified_name = r.tpm2b(kMaxName, "certifyInfo.name");
    a.certified_qualified_name = r.tpm2b(kMaxName, "certifyInfo.qualifiedName");
  } else {
    std::uint32_t count = r.u32("pcrSelect.count");
    if (count > kMaxPcrBanks) throw ParseError("TPMS_ATTEST: too many PCR selections");
    for (std::uint32_t i = 0; i < count; ++i) {
      PcrSelection sel;
      sel.hash_alg = r.u16("pcrSelect.hash");
      std::uint8_t size = r.u8("pcrSelect.sizeofSelect");
      if (size > kMaxSizeofSelect) throw ParseError("TPMS_ATTEST: sizeofSelect too large");
      Bytes bits = r.take(size, "pcrSelect.pcrSelect");
      for (std::uint32_t pcr = 0; pcr < 8u * size; ++pcr)
        if (bits[pcr / 8] & (1u << (pcr % 8))) sel.pcrs.push_back(pcr);
      a.pcr_select.push_back(std::move(sel));
    }
    a.pcr_digest = r.tpm2b(kMaxDigest, "pcrDigest");
  }
  if (!r.at_end())
    throw ParseError("TPMS_ATTEST: " + std::to_string(r.remaining()) + " trailing bytes");
  return a;
}

}  // namespace kl::tpm
