// Hash algorithms by the names Keylime uses and the ids the TPM uses, plus one-shot digest/HMAC.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"

namespace kl::crypto {

enum class HashAlg { sha1, sha256, sha384, sha512, sm3_256 };

// Keylime spelling: "sha1","sha256","sha384","sha512","sm3_256". nullopt for anything else.
std::optional<HashAlg> hash_from_name(std::string_view name);
std::string_view hash_name(HashAlg);
// TPM2_ALG_SHA1 (0x0004), SHA256 (0x000B), SHA384 (0x000C), SHA512 (0x000D), SM3_256 (0x0012).
std::optional<HashAlg> hash_from_tpm_alg(std::uint16_t tpm_alg_id);
std::uint16_t tpm_alg_of(HashAlg);
std::size_t digest_size(HashAlg);
const EVP_MD* evp_md(HashAlg);  // nullptr if OpenSSL lacks it (sm3 may be absent)
Bytes digest(HashAlg, ByteView data);  // throws std::runtime_error if unavailable
Bytes hmac(HashAlg, ByteView key, ByteView data);  // throws std::runtime_error if unavailable

}  // namespace kl::crypto
