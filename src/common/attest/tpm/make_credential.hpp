// TPM2_MakeCredential in software: the registrar's challenge to a new agent.
#pragma once
#include <string>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace kl::tpm {

std::string random_challenge();  // 32 chars from [A-Za-z0-9], alphabet[random_byte % 62], as upstream

// Blob in tpm2-tools' makecredential file format (0xBADCC0DE | 1 | TPM2B_ID_OBJECT | TPM2B secret),
// RSA EK (OAEP, label "IDENTITY\0") and ECC EK (ephemeral ECDH + KDFe). Throws ParseError for an EK
// it cannot use (no AES symmetric, unsupported curve/hash, ...).
Bytes make_credential(const PublicArea& ek, ByteView ak_name, ByteView credential);

}  // namespace kl::tpm
