// Internal: one-shot digests for the hot replay loop. OpenSSL's EVP layer costs a provider dispatch
// and a context allocation per call, which dominates for ~100-byte template data; the one-shot
// SHA* functions do not. Not part of the public API of the ima module.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::ima::detail {

struct DigestValue {
  std::array<std::uint8_t, 64> bytes{};
  std::size_t size = 0;
  ByteView view() const { return {bytes.data(), size}; }
  Bytes to_bytes() const { return Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size)); }
};

DigestValue fast_digest(crypto::HashAlg alg, ByteView data);
// H(a || b) without concatenating (PCR extend).
DigestValue fast_digest2(crypto::HashAlg alg, ByteView a, ByteView b);

}  // namespace kl::ima::detail
