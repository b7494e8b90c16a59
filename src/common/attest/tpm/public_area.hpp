// TPM2B_PUBLIC: parsing, TPM Name, conversion to and from OpenSSL keys.
#pragma once
#include <tss2/tss2_tpm2_types.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::tpm {

struct PublicArea {
  TPMT_PUBLIC tpmt{};  // <tss2/tss2_tpm2_types.h>
  Bytes tpmt_bytes;    // the marshalled TPMT_PUBLIC exactly as received (name is computed over it)
};

// Strict: the 2-byte size must equal the remaining length, the unmarshal must consume it all,
// input over 2048 bytes rejected; uses Tss2_MU_TPM2B_PUBLIC_Unmarshal. Throws kl::ParseError.
PublicArea parse_tpm2b_public(ByteView tpm2b_public);
Bytes marshal_tpm2b_public(const TPMT_PUBLIC& pub);  // for software agents and tests

// RSA (exponent 0 means 65537) or ECC (NIST P-256/P-384/P-521) public key. Throws ParseError otherwise.
ossl::Pkey public_key(const PublicArea& area);
Bytes name_of(const PublicArea& area);  // BE16(nameAlg) || H_nameAlg(tpmt_bytes); throws ParseError on bad nameAlg
Bytes spki_der(EVP_PKEY* key);          // SubjectPublicKeyInfo DER (for comparing with a certificate)

// Build a TPMT_PUBLIC for an existing OpenSSL key (software agents/tests): RSA or EC, with the given
// attributes; `ek_template=true` gives the TCG default EK shape (AES-128-CFB symmetric, restricted decrypt,
// policy = the standard EK authPolicy, nameAlg sha256); otherwise a restricted signing key (AK, RSASSA-SHA256
// or ECDSA-SHA256, attributes 0x00050072).
TPMT_PUBLIC tpmt_from_key(EVP_PKEY* key, bool ek_template);

}  // namespace kl::tpm
