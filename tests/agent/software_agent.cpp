#include "agent/software_agent.hpp"

#include <stdexcept>

#include "common/attest/tpm/activate_credential.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "support/cert_issue.hpp"

namespace kl::testing {
namespace {

kl::ossl::Pkey generate(SoftwareAgent::EkAlg alg) {
  kl::ossl::Pkey key(alg == SoftwareAgent::EkAlg::ecc_p256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048));
  if (!key) throw std::runtime_error("software agent key generation failed: " + kl::ossl::last_error());
  return key;
}

}  // namespace

SoftwareAgent::SoftwareAgent(EkAlg alg) : ek_(generate(alg)), ak_(generate(alg)) {
  ek_tpm2b_ = kl::tpm::marshal_tpm2b_public(kl::tpm::tpmt_from_key(ek_.get(), /*ek_template=*/true));
  ak_tpm2b_ = kl::tpm::marshal_tpm2b_public(kl::tpm::tpmt_from_key(ak_.get(), /*ek_template=*/false));
}

kl::Bytes SoftwareAgent::activate_credential(kl::ByteView blob) {
  const auto ek_area = kl::tpm::parse_tpm2b_public(ek_tpm2b_);
  const auto ak_name = kl::tpm::name_of(kl::tpm::parse_tpm2b_public(ak_tpm2b_));
  return kl::tpm::activate_credential_software(ek_.get(), ek_area, ak_name, blob);
}

kl::Bytes SoftwareAgent::issue_ek_certificate(EVP_PKEY* ca_key, X509* ca_cert) {
  auto cert = issue_certificate(ek_.get(), "software agent EK", ca_key, ca_cert, LeafKind::ek);
  ek_cert_der_ = cert_to_der(cert.get());
  return *ek_cert_der_;
}

}  // namespace kl::testing
