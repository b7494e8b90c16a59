// TPMT_SIGNATURE (TPM 2.0 Part 2, 11.3.4) parsing and verification with an OpenSSL public key.
#pragma once
#include <cstdint>

#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"

namespace kl::tpm {

inline constexpr std::uint16_t kAlgRsassa = 0x0014;  // TPM2_ALG_RSASSA
inline constexpr std::uint16_t kAlgRsapss = 0x0016;  // TPM2_ALG_RSAPSS
inline constexpr std::uint16_t kAlgEcdsa = 0x0018;   // TPM2_ALG_ECDSA

struct Signature {
  std::uint16_t sig_alg = 0;
  std::uint16_t hash_alg = 0;  // TPM_ALG_ID of the digest that was signed (not validated by the parser)
  Bytes rsa;                   // RSASSA / RSAPSS
  Bytes ecc_r, ecc_s;          // ECDSA
};

// Big-endian: sigAlg u16, hash u16, then RSASSA/RSAPSS: TPM2B (<= 512 bytes);
// ECDSA: TPM2B r, TPM2B s (each 1..128 bytes). Whole input must be consumed.
// Other signature schemes throw. Throws kl::ParseError.
Signature parse_signature(ByteView tpmt_signature);

// RSASSA (PKCS#1 v1.5) / RSAPSS (salt length = digest size, as a TPM signs) / ECDSA with
// SHA-1/256/384/512 over `signed_data`, which is hashed here with sig.hash_alg.
// The scheme must fit the key type (RSA key: RSASSA/RSAPSS, EC key: ECDSA); ECDSA r and s must
// each be 1..ceil(order_bits/8) bytes. Returns false on any mismatch or bad signature.
bool verify_signature(EVP_PKEY* key, const Signature& sig, ByteView signed_data);

}  // namespace kl::tpm
