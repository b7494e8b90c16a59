// The two key derivation functions of TPM 2.0 Part 1 ("Key Derivation Function" clauses).
#pragma once
#include <cstdint>
#include <string_view>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::tpm {

// KDFa: SP800-108 counter-mode HMAC. Each block is HMAC(key, BE32(i) || label || 0x00 || U || V || BE32(bits)).
// The label gets its terminating zero added here (pass "STORAGE", not "STORAGE\0").
// The result is bits/8 rounded up bytes; excess high bits of the first byte are cleared as the TPM does.
Bytes kdfa(crypto::HashAlg, ByteView key, std::string_view label, ByteView context_u, ByteView context_v,
           std::uint32_t bits);
// KDFe: SP800-56A concatenation KDF. Each block is H(BE32(i) || Z || label || 0x00 || partyU || partyV).
Bytes kdfe(crypto::HashAlg, ByteView z, std::string_view label, ByteView party_u, ByteView party_v,
           std::uint32_t bits);

}  // namespace kl::tpm
