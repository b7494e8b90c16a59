// What a keylime agent holds for registration: an EK (with its certificate, if any) and an AK made under it.
// Implemented with a real TPM (TpmAgent, over a swtpm TCTI) and in software (SoftwareAgent).
#pragma once
#include <optional>

#include "common/attest/crypto/bytes.hpp"

namespace kl::testing {

class AgentIdentity {
 public:
  virtual ~AgentIdentity() = default;
  virtual kl::Bytes ek_tpm2b_public() const = 0;   // marshalled TPM2B_PUBLIC of the EK
  virtual kl::Bytes ak_tpm2b_public() const = 0;   // marshalled TPM2B_PUBLIC of the AK
  virtual std::optional<kl::Bytes> ek_certificate_der() const = 0;
  // TPM2_ActivateCredential(AK, EK) over a blob in tpm2-tools' makecredential file format
  // (0xBADCC0DE | 1 | TPM2B_ID_OBJECT | TPM2B_ENCRYPTED_SECRET) -> the credential bytes.
  // Throws std::runtime_error (or kl::ParseError for a malformed blob) when activation fails.
  virtual kl::Bytes activate_credential(kl::ByteView blob) = 0;
};

// The pieces of a tpm2-tools makecredential blob. Throws kl::ParseError on a wrong magic/version,
// a length running past the end, or trailing bytes.
struct CredentialBlob {
  kl::Bytes id_object;         // TPM2B_ID_OBJECT.credential (without its size prefix)
  kl::Bytes encrypted_secret;  // TPM2B_ENCRYPTED_SECRET.secret (without its size prefix)
};
CredentialBlob parse_credential_blob(kl::ByteView blob);

}  // namespace kl::testing
