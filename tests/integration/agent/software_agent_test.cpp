// SoftwareAgent: TPM-shaped public areas and the make/activate credential round trip without a TPM.
#include <catch2/catch.hpp>

#include "agent/software_agent.hpp"
#include "common/attest/tpm/make_credential.hpp"
#include "common/attest/tpm/public_area.hpp"

using namespace kl::testing;

TEST_CASE("SoftwareAgent EK/AK public areas have the TPM shapes", "[agent][software]") {
  for (auto alg : {SoftwareAgent::EkAlg::ecc_p256, SoftwareAgent::EkAlg::rsa2048}) {
    const bool ecc = alg == SoftwareAgent::EkAlg::ecc_p256;
    INFO((ecc ? "ecc_p256" : "rsa2048"));
    SoftwareAgent agent(alg);
    const auto ek = kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public());
    const auto ak = kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public());
    CHECK(ek.tpmt.type == (ecc ? TPM2_ALG_ECC : TPM2_ALG_RSA));
    CHECK(ak.tpmt.objectAttributes == 0x00050072u);
    CHECK((ek.tpmt.objectAttributes & TPMA_OBJECT_DECRYPT) != 0);
    CHECK((ek.tpmt.objectAttributes & TPMA_OBJECT_RESTRICTED) != 0);
    CHECK(kl::tpm::spki_der(kl::tpm::public_key(ek).get()) == kl::tpm::spki_der(agent.ek_key()));
    CHECK(kl::tpm::spki_der(kl::tpm::public_key(ak).get()) == kl::tpm::spki_der(agent.ak_key()));
    CHECK_FALSE(agent.ek_certificate_der().has_value());
  }
  // Two agents never share keys.
  CHECK(SoftwareAgent().ek_tpm2b_public() != SoftwareAgent().ek_tpm2b_public());
}

TEST_CASE("SoftwareAgent make_credential -> activate_credential round trip", "[agent][software]") {
  for (auto alg : {SoftwareAgent::EkAlg::ecc_p256, SoftwareAgent::EkAlg::rsa2048}) {
    INFO((alg == SoftwareAgent::EkAlg::ecc_p256 ? "ecc_p256" : "rsa2048"));
    SoftwareAgent agent(alg);
    const auto ek = kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public());
    const auto ak_name = kl::tpm::name_of(kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public()));
    const std::string challenge = kl::tpm::random_challenge();
    const auto blob = kl::tpm::make_credential(ek, ak_name, kl::as_bytes(challenge));
    CHECK(kl::as_string(agent.activate_credential(blob)) == challenge);

    // A blob for another agent's EK cannot be activated here.
    SoftwareAgent other(alg);
    const auto other_blob = kl::tpm::make_credential(kl::tpm::parse_tpm2b_public(other.ek_tpm2b_public()), ak_name,
                                                     kl::as_bytes(challenge));
    CHECK_THROWS(agent.activate_credential(other_blob));
    // Bound to a different AK name: the outer HMAC does not match.
    auto wrong_name = ak_name;
    wrong_name.back() ^= 1;
    CHECK_THROWS(agent.activate_credential(kl::tpm::make_credential(ek, wrong_name, kl::as_bytes(challenge))));
  }
}
