// One attestation round (evaluate_quote_response) on real TPMS_ATTEST structures signed by a software AK.
#include <catch2/catch.hpp>

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/quote/tpm_policy.hpp"
#include "verifier/quote_round.hpp"

using nlohmann::json;
using namespace kl::verifier;

namespace {

std::string rsa_pubkey_pem() {
  kl::ossl::Pkey key(EVP_RSA_gen(2048));
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

const std::string kZero(64, '0');

struct Agent {
  kl::testing::SoftwareAgent identity{kl::testing::SoftwareAgent::EkAlg::rsa2048};   // RSA AK -> rsassa
  kl::testing::SoftwareTpm tpm{identity.ak_key(), identity.ak_tpm2b_public()};
  std::string pubkey = rsa_pubkey_pem();
  Agent() { tpm.pcr_extend(16, kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(pubkey))); }

  json response(const std::string& nonce, const std::vector<unsigned>& pcrs, bool with_pubkey = true) {
    const auto ev = tpm.quote(kl::as_bytes(nonce), pcrs);
    json r{{"quote", kl::quote::make_quote_string({ev.attest, ev.signature, ev.pcr_blob})},
           {"hash_alg", "sha256"},
           {"enc_alg", "rsa2048"},
           {"sign_alg", "rsassa"}};
    if (with_pubkey) r["pubkey"] = pubkey;
    return r;
  }
};

AttestationState state() {
  AttestationState s;
  s.tpm_policy = kl::quote::parse_tpm_policy_text("{\"15\": [\"" + kZero + "\"], \"mask\": \"0x8000\"}");
  s.accept_hash_algs = {"sha256"};
  s.accept_enc_algs = {"ecc", "rsa"};   // old spellings accept the agent's rsa2048
  s.accept_sign_algs = {"rsassa"};
  return s;
}

kl::ossl::Pkey ak_of(Agent& a) {
  return kl::ossl::Pkey(EVP_PKEY_dup(a.identity.ak_key()));
}

}  // namespace

TEST_CASE("quote round: a good quote passes and yields the state to persist") {
  Agent a;
  auto ak = ak_of(a);
  const auto r = evaluate_quote_response(a.response("n0nce0000000000000ab", {15, 16}), "n0nce0000000000000ab", ak.get(),
                                         state(), kl::SeverityPolicy());
  INFO((r.failure.events().empty() ? "" : r.failure.events()[0].event_id + " " + r.failure.events()[0].context_text()));
  CHECK(r.ok());
  CHECK(r.pubkey_from_response);
  CHECK(r.pubkey == a.pubkey);
  CHECK(r.hash_alg == "sha256");
  CHECK(r.enc_alg == "rsa2048");
  REQUIRE(r.clock_update);
  CHECK(r.clock_update->safe);
}

TEST_CASE("quote round: failures carry upstream's event ids") {
  Agent a;
  auto ak = ak_of(a);
  const std::string nonce = "AAAAAAAAAAAAAAAAAAAA";
  const kl::SeverityPolicy sev;

  SECTION("PCR outside tpm_policy") {
    a.tpm.pcr_extend(15, kl::Bytes(32, 1));
    const auto r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"pcr_validation.invalid_pcr_15"});
    CHECK(r.failure.recoverable());
  }
  SECTION("wrong nonce") {
    const auto r = evaluate_quote_response(a.response("BBBBBBBBBBBBBBBBBBBB", {15, 16}), nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.quote_validation"});
    CHECK_FALSE(r.failure.recoverable());
  }
  SECTION("swapped AK") {
    kl::testing::SoftwareAgent other(kl::testing::SoftwareAgent::EkAlg::rsa2048);
    const auto r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, other.ak_key(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.quote_validation"});
  }
  SECTION("tampered TPMS_ATTEST") {
    json resp = a.response(nonce, {15, 16});
    auto parts = kl::quote::parse_quote_string(resp["quote"].get<std::string>());
    parts.attest[parts.attest.size() - 1] ^= 1;
    resp["quote"] = kl::quote::make_quote_string(parts);
    const auto r = evaluate_quote_response(resp, nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.quote_validation"});
  }
  SECTION("PCR 16 missing or not binding the key") {
    auto r = evaluate_quote_response(a.response(nonce, {15}), nonce, ak.get(), state(), sev);
    CHECK(r.failure.has_event("pcr_validation.missing_pcr_16"));
    json resp = a.response(nonce, {15, 16});
    resp["pubkey"] = rsa_pubkey_pem();
    r = evaluate_quote_response(resp, nonce, ak.get(), state(), sev);
    CHECK(r.failure.has_event("pcr_validation.invalid_pcr_16"));
  }
  SECTION("policy PCR not quoted") {
    const auto r = evaluate_quote_response(a.response(nonce, {16}), nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"pcr_validation.missing_pcrs"});
  }
  SECTION("no quote, no pubkey, algorithms") {
    auto r = evaluate_quote_response(json{{"hash_alg", "sha256"}}, nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.invalid_data"});
    r = evaluate_quote_response(a.response(nonce, {15, 16}, false), nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.no_pubkey"});
    auto st = state();
    st.cached_pubkey = a.pubkey;   // partial=1 answers use the cached key
    r = evaluate_quote_response(a.response(nonce, {15, 16}, false), nonce, ak.get(), st, sev);
    CHECK(r.ok());
    st.accept_hash_algs = {"sha384"};
    r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, ak.get(), st, sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.invalid_hash_alg"});
    st = state();
    st.accept_enc_algs = {"ecc"};
    r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, ak.get(), st, sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.invalid_enc_alg"});
    st = state();
    st.accept_sign_algs = {"ecdsa"};
    r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, ak.get(), st, sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.invalid_sign_alg"});
  }
  SECTION("garbage quote string is an internal exception") {
    json resp = a.response(nonce, {15, 16});
    resp["quote"] = "xnot-a-quote";
    const auto r = evaluate_quote_response(resp, nonce, ak.get(), state(), sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"internal.verifier.exception"});
    resp["quote"] = "r" + std::string(5000, 'A');
    CHECK(evaluate_quote_response(resp, nonce, ak.get(), state(), sev).failure.failed());
  }
  SECTION("clock going backwards") {
    auto st = state();
    st.clock = kl::tpm::ClockInfo{~0ull >> 1, 0, 0, true};
    const auto r = evaluate_quote_response(a.response(nonce, {15, 16}), nonce, ak.get(), st, sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"qoute_validation.quote_validation"});
    CHECK(r.failure.events()[0].context.at("message") == "Validation of clockinfo from quote using tpm2-tools");
  }
  SECTION("IMA offset bookkeeping") {
    auto st = state();
    st.ima.next_entry = 5;
    st.ima.pcr10 = kl::Bytes(32, 0);
    st.ima.bank = kl::crypto::HashAlg::sha256;
    json resp = a.response(nonce, {15, 16});
    resp["ima_measurement_list_entry"] = 3;
    auto r = evaluate_quote_response(resp, nonce, ak.get(), st, sev);
    CHECK(r.failure.has_event("qoute_validation.invalid_ima_entry_nb"));
    resp["ima_measurement_list_entry"] = 5;
    resp["boottime"] = 1234;   // rebooted: inconclusive round
    r = evaluate_quote_response(resp, nonce, ak.get(), st, sev);
    CHECK(r.inconclusive);
    CHECK_FALSE(r.failure.failed());
    CHECK(r.ima.next_entry == 0);
    CHECK_FALSE(r.ima.pcr10);
    resp["boottime"] = "x";
    r = evaluate_quote_response(resp, nonce, ak.get(), st, sev);
    CHECK(r.failure.event_ids() == std::vector<std::string>{"internal.verifier.exception"});
  }
}

TEST_CASE("algorithm acceptance normalises the old spellings") {
  CHECK(algorithm_accepted("rsa2048", {"rsa"}));
  CHECK(algorithm_accepted("ecc256", {"ecc"}));
  CHECK(algorithm_accepted("ecc", {"ecc256"}));
  CHECK_FALSE(algorithm_accepted("rsa3072", {"rsa"}));
  CHECK_FALSE(algorithm_accepted("ecc384", {"ecc"}));
  CHECK(algorithm_accepted("sha256", {"sha1", "sha256"}));
  CHECK_FALSE(algorithm_accepted("", {"sha256"}));
}
