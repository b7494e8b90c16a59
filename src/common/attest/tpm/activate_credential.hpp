// TPM2_ActivateCredential in software (the agent side), for the software test agent and round-trip tests.
#pragma once
#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace kl::tpm {

// Inverse of make_credential with the EK private key; checks the outer HMAC; throws std::runtime_error on failure.
Bytes activate_credential_software(EVP_PKEY* ek_private, const PublicArea& ek, ByteView ak_name, ByteView blob);

}  // namespace kl::tpm
