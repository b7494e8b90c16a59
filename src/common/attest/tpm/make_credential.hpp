// TPM2_MakeCredential in software: the registrar's challenge to a new agent.
#pragma once
#include <cstdint>
#include <string>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace kl::tpm {

std::string random_challenge();  // 32 chars from [A-Za-z0-9], alphabet[random_byte % 62], as upstream

// Blob in tpm2-tools' makecredential file format (0xBADCC0DE | 1 | TPM2B_ID_OBJECT | TPM2B secret),
// RSA EK (OAEP, label "IDENTITY\0") and ECC EK (ephemeral ECDH + KDFe). Throws ParseError for an EK
// it cannot use (no AES symmetric, unsupported curve/hash, ...).
Bytes make_credential(const PublicArea& ek, ByteView ak_name, ByteView credential);

}  // namespace kl::tpm

// Shared by make_credential and activate_credential_software; not for other callers.
namespace kl::tpm::credential_detail {

struct EkParams {
  crypto::HashAlg hash;      // the EK's nameAlg: used for OAEP/KDFe, KDFa and the outer HMAC
  std::uint16_t sym_key_bits;  // AES key size from the EK's symmetric definition
};
// Throws ParseError for an EK that cannot protect a credential.
EkParams ek_params(const PublicArea& ek);
// AES-CFB with a zero IV, as the TPM uses for credential protection.
Bytes aes_cfb(ByteView key, ByteView data, bool encrypt);

}  // namespace kl::tpm::credential_detail
