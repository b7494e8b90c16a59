// Reads the tpm2-tools makecredential file format the registrar sends as `blob`.
#include <tss2/tss2_tpm2_types.h>

#include "agent/agent_identity.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::testing {
namespace {

constexpr std::uint32_t kMagic = 0xBADCC0DE;
constexpr std::uint32_t kVersion = 1;

class Reader {
 public:
  explicit Reader(kl::ByteView data) : data_(data) {}
  std::uint32_t u32() {
    need(4);
    std::uint32_t v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
                      (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return v;
  }
  std::uint16_t u16() {
    need(2);
    std::uint16_t v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  kl::Bytes take(std::size_t n) {
    need(n);
    kl::Bytes out(data_.begin() + static_cast<std::ptrdiff_t>(pos_), data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return out;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  void need(std::size_t n) const {
    if (data_.size() - pos_ < n) throw kl::ParseError("credential blob truncated");
  }
  kl::ByteView data_;
  std::size_t pos_ = 0;
};

}  // namespace

CredentialBlob parse_credential_blob(kl::ByteView blob) {
  Reader r(blob);
  if (r.u32() != kMagic) throw kl::ParseError("credential blob: bad magic (expected 0xBADCC0DE)");
  if (r.u32() != kVersion) throw kl::ParseError("credential blob: unsupported version");
  CredentialBlob out;
  // Sizes are bounded by the TPM structures they must fit, never trusted beyond that.
  const std::uint16_t id_size = r.u16();
  if (id_size > sizeof(TPM2B_ID_OBJECT::credential)) throw kl::ParseError("credential blob: ID object too large");
  out.id_object = r.take(id_size);
  const std::uint16_t secret_size = r.u16();
  if (secret_size > sizeof(TPM2B_ENCRYPTED_SECRET::secret))
    throw kl::ParseError("credential blob: encrypted secret too large");
  out.encrypted_secret = r.take(secret_size);
  if (!r.done()) throw kl::ParseError("credential blob: trailing bytes");
  return out;
}

}  // namespace kl::testing
