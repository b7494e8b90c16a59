// A keylime agent identity without a TPM: EK and AK are OpenSSL keys, their TPM2B_PUBLIC areas are built with
// kl::tpm::tpmt_from_key, activation is kl::tpm::activate_credential_software. Cheap enough to create thousands
// (ECC P-256 EK by default) for benchmarks.
#pragma once
#include <optional>

#include "agent/agent_identity.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::testing {

class SoftwareAgent : public AgentIdentity {
 public:
  enum class EkAlg { rsa2048, ecc_p256 };
  explicit SoftwareAgent(EkAlg alg = EkAlg::ecc_p256);   // AK: ECC P-256 (ECDSA-SHA256) for an ECC EK, RSA 2048 else

  kl::Bytes ek_tpm2b_public() const override { return ek_tpm2b_; }
  kl::Bytes ak_tpm2b_public() const override { return ak_tpm2b_; }
  std::optional<kl::Bytes> ek_certificate_der() const override { return ek_cert_der_; }
  kl::Bytes activate_credential(kl::ByteView blob) override;

  // Issues (and from now on reports) an EK certificate for this EK, signed by ca_key with issuer = ca_cert's
  // subject. Returns the DER.
  kl::Bytes issue_ek_certificate(EVP_PKEY* ca_key, X509* ca_cert);
  void set_ek_certificate(kl::Bytes der) { ek_cert_der_ = std::move(der); }

  EVP_PKEY* ek_key() const { return ek_.get(); }
  EVP_PKEY* ak_key() const { return ak_.get(); }   // for signing software quotes later

 private:
  kl::ossl::Pkey ek_;
  kl::ossl::Pkey ak_;
  kl::Bytes ek_tpm2b_;
  kl::Bytes ak_tpm2b_;
  std::optional<kl::Bytes> ek_cert_der_;
};

}  // namespace kl::testing
