// SoftwareTpm: the structures it signs are real TPM structures that the project's parsers and verifier accept,
// and its state (PCRs, clock, reset counter) behaves as a TPM's does across quotes.
#include <catch2/catch.hpp>

#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/quote/pcr_blob.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/attest.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/attest/tpm/signature.hpp"

using namespace kl::testing;

TEST_CASE("software TPM quotes parse as TPMS_ATTEST and verify with the AK (RSA and ECC)", "[software_quote]") {
  for (auto alg : {SoftwareAgent::EkAlg::rsa2048, SoftwareAgent::EkAlg::ecc_p256}) {
    SoftwareAgent agent(alg);
    SoftwareTpm tpm(agent.ak_key(), agent.ak_tpm2b_public());
    tpm.pcr_extend(15, kl::Bytes(32, 0xab));
    auto ev = tpm.quote(kl::as_bytes("nonce123"), {15, 0, 15});
    auto attest = kl::tpm::parse_attest(ev.attest);
    CHECK(attest.magic == kl::tpm::kTpmGeneratedValue);
    CHECK(attest.type == kl::tpm::kStAttestQuote);
    CHECK(kl::as_string(attest.extra_data) == "nonce123");
    CHECK(attest.qualified_signer == kl::tpm::name_of(kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public())));
    REQUIRE(attest.pcr_select.size() == 1);
    CHECK(attest.pcr_select[0].pcrs == std::vector<std::uint32_t>{0, 15});
    CHECK(attest.clock.safe);
    auto sig = kl::tpm::parse_signature(ev.signature);
    CHECK(sig.sig_alg == (alg == SoftwareAgent::EkAlg::rsa2048 ? kl::tpm::kAlgRsassa : kl::tpm::kAlgEcdsa));
    auto ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public()));
    CHECK(kl::tpm::verify_signature(ak.get(), sig, ev.attest));
    auto check = kl::quote::verify_quote({ev.attest, ev.signature, ev.pcr_blob}, "nonce123", "sha256", ak.get());
    INFO(check.error);
    REQUIRE(check.ok());
    kl::Bytes expected15(32, 0);
    expected15.insert(expected15.end(), 32, 0xab);
    CHECK(check.quote->pcrs.at(15) == kl::crypto::digest(kl::crypto::HashAlg::sha256, expected15));
    CHECK(check.quote->pcrs.at(0) == kl::Bytes(32, 0));
    CHECK_FALSE(kl::quote::verify_quote({ev.attest, ev.signature, ev.pcr_blob}, "nonce124", "sha256", ak.get()).ok());
  }
}

TEST_CASE("software TPM: clock grows, reboot bumps resetCount and clears PCRs, bad input refused", "[software_quote]") {
  SoftwareAgent agent;
  SoftwareTpm tpm(agent.ak_key(), agent.ak_tpm2b_public());
  tpm.pcr_extend(10, kl::Bytes(32, 1));
  auto a1 = kl::tpm::parse_attest(tpm.quote(kl::as_bytes("a"), {10}).attest);
  auto a2 = kl::tpm::parse_attest(tpm.quote(kl::as_bytes("b"), {10}).attest);
  CHECK(a2.clock.clock > a1.clock.clock);
  CHECK(a2.clock.reset_count == a1.clock.reset_count);
  tpm.reboot();
  CHECK(tpm.pcr_value(10) == kl::Bytes(32, 0));
  auto a3 = kl::tpm::parse_attest(tpm.quote(kl::as_bytes("c"), {10}).attest);
  CHECK(a3.clock.reset_count == a1.clock.reset_count + 1);
  CHECK(a3.clock.clock > a2.clock.clock);

  CHECK_THROWS_AS(tpm.quote(kl::Bytes(65, 'a'), {0}), std::invalid_argument);
  CHECK_THROWS_AS(tpm.quote(kl::as_bytes("x"), {24}), std::invalid_argument);
  CHECK_THROWS_AS(tpm.pcr_extend(3, kl::Bytes(20, 0)), std::invalid_argument);
  CHECK_THROWS_AS(tpm.pcr_extend(24, kl::Bytes(32, 0)), std::invalid_argument);
  tpm.pcr_extend(16, kl::Bytes(32, 9));
  tpm.pcr_reset(16);
  CHECK(tpm.pcr_value(16) == kl::Bytes(32, 0));
}

TEST_CASE("software TPM: a swapped AK's signature does not verify against the registered AK", "[software_quote]") {
  SoftwareAgent agent, other;
  SoftwareTpm tpm(agent.ak_key(), agent.ak_tpm2b_public());
  tpm.set_ak(other.ak_key());
  auto ev = tpm.quote(kl::as_bytes("n"), {0});
  auto ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public()));
  auto check = kl::quote::verify_quote({ev.attest, ev.signature, ev.pcr_blob}, "n", "sha256", ak.get());
  CHECK_FALSE(check.ok());
}
