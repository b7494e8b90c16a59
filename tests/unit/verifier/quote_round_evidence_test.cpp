// The attestation round with IMA and measured-boot evidence: software-signed quotes over PCR 10 / the boot PCRs,
// IMA logs built line by line, the sample UEFI event logs of testdata/keylime/mb.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <openssl/pem.h>

#include "agent/evidence_logs.hpp"
#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/mb/boot_log.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/quote/tpm_policy.hpp"
#include "verifier/quote_round.hpp"

using nlohmann::json;
using namespace kl::verifier;
using kl::testing::ImaLine;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string pubkey_pem() {
  kl::ossl::Pkey key(EVP_RSA_gen(2048));
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

const std::string kNonce = "IMAnonce000000000000";

// A software TPM agent whose IMA log and boot log the test builds.
struct Agent {
  kl::testing::SoftwareAgent identity{kl::testing::SoftwareAgent::EkAlg::rsa2048};
  kl::testing::SoftwareTpm tpm{identity.ak_key(), identity.ak_tpm2b_public()};
  std::string pubkey = pubkey_pem();
  std::vector<ImaLine> lines;
  std::string log;
  kl::Bytes boot_log;
  Agent() { tpm.pcr_extend(16, kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(pubkey))); }

  void measure(const ImaLine& l, bool extend = true) {
    lines.push_back(l);
    log += l.text + "\n";
    if (extend) tpm.pcr_extend(10, l.sha256_extend);
  }
  void measure_boot(const kl::Bytes& event_log) {
    for (const auto& [pcr, d] : kl::testing::boot_log_extensions(event_log)) tpm.pcr_extend(pcr, d);
    boot_log = event_log;
  }
  // The agent's answer: the IMA log from `entry` on (as the agent API serves it).
  json response(const std::vector<unsigned>& pcrs, std::size_t entry = 0, bool with_ima = true) {
    const auto ev = tpm.quote(kl::as_bytes(kNonce), pcrs);
    json r{{"quote", kl::quote::make_quote_string({ev.attest, ev.signature, ev.pcr_blob})},
           {"hash_alg", "sha256"}, {"enc_alg", "rsa2048"}, {"sign_alg", "rsassa"},
           {"pubkey", pubkey}, {"boottime", 1700000000}};
    if (with_ima) {
      std::size_t pos = 0;
      for (std::size_t i = 0; i < entry; ++i) pos = log.find('\n', pos) + 1;
      r["ima_measurement_list"] = log.substr(pos);
      r["ima_measurement_list_entry"] = entry;
    }
    if (!boot_log.empty()) r["mb_measurement_list"] = kl::base64_encode(boot_log);
    return r;
  }
};

AttestationState state_for(const json& runtime_policy) {
  AttestationState s;
  s.tpm_policy = kl::quote::parse_tpm_policy_text("{\"mask\": \"0x10400\"}");
  s.accept_hash_algs = {"sha256"};
  s.accept_enc_algs = {"rsa"};
  s.accept_sign_algs = {"rsassa"};
  s.runtime_policy = kl::policy::CompiledPolicy::compile(runtime_policy);
  return s;
}

std::vector<std::string> ids(const RoundResult& r) { return r.failure.event_ids(); }

std::string describe(const RoundResult& r) {
  std::string s;
  for (const auto& e : r.failure.events()) s += e.event_id + " " + e.context_text() + "\n";
  return s;
}

}  // namespace

TEST_CASE("IMA in the round: a log that replays to PCR 10 and fits the policy passes, incrementally") {
  Agent a;
  kl::ossl::Pkey ak(EVP_PKEY_dup(a.identity.ak_key()));
  a.measure(kl::testing::ima_ng_line("boot_aggregate", "aggregate"));
  a.measure(kl::testing::ima_ng_line("/usr/bin/bash", "bash"));
  a.measure(kl::testing::ima_ng_line("/usr/lib/libc.so.6", "libc"));
  auto st = state_for(kl::testing::runtime_policy_for(a.lines));

  auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), st, kl::SeverityPolicy());
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK(r.ima_replayed);
  CHECK(r.ima_matched);
  CHECK(r.ima.next_entry == 3);
  REQUIRE(r.ima.pcr10);
  CHECK(*r.ima.pcr10 == a.tpm.pcr_value(10));
  CHECK(r.ima.boottime == 1700000000);

  // Next round: only the new line is sent (entry 3) and replayed from the saved PCR 10.
  const ImaLine ls = kl::testing::ima_ng_line("/usr/bin/ls", "ls");
  a.measure(ls);
  st.runtime_policy = kl::policy::CompiledPolicy::compile(kl::testing::runtime_policy_for(a.lines));
  st.ima = r.ima;
  st.clock = r.clock_update;
  r = evaluate_quote_response(a.response({10, 16}, 3), kNonce, ak.get(), st, kl::SeverityPolicy());
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK(r.ima.next_entry == 4);

  // A quote that lags the log (the line is logged, not yet extended): the prefix matches, the line is asked
  // for again next time.
  st.ima = r.ima;
  st.clock = r.clock_update;
  const ImaLine cat = kl::testing::ima_ng_line("/usr/bin/cat", "cat");
  a.lines.push_back(cat);
  a.log += cat.text + "\n";
  st.runtime_policy = kl::policy::CompiledPolicy::compile(kl::testing::runtime_policy_for(a.lines));
  r = evaluate_quote_response(a.response({10, 16}, 4), kNonce, ak.get(), st, kl::SeverityPolicy());
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK(r.ima.next_entry == 4);
}

TEST_CASE("IMA in the round: failures carry upstream's event ids") {
  Agent a;
  kl::ossl::Pkey ak(EVP_PKEY_dup(a.identity.ak_key()));
  a.measure(kl::testing::ima_ng_line("boot_aggregate", "aggregate"));
  a.measure(kl::testing::ima_ng_line("/usr/bin/bash", "bash"));
  const auto policy = kl::testing::runtime_policy_for(a.lines);
  const kl::SeverityPolicy sev;

  SECTION("PCR 10 extended with something the log does not show: ima.pcr_mismatch") {
    a.tpm.pcr_extend(10, kl::Bytes(32, 0x42));
    const auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), state_for(policy), sev);
    CHECK(ids(r) == std::vector<std::string>{"ima.pcr_mismatch"});
    CHECK_FALSE(r.ima_matched);
    CHECK(r.ima.next_entry == 0);   // any IMA failure: the next round asks for the whole log
    CHECK_FALSE(r.ima.pcr10);
  }
  SECTION("a file outside the policy: ima.validation.ima-ng.not_in_allowlist naming the file") {
    a.measure(kl::testing::ima_ng_line("/root/evil.sh", "rm -rf /"));
    const auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), state_for(policy), sev);
    REQUIRE(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});
    CHECK(r.failure.events()[0].context["message"] == "File not found in allowlist: /root/evil.sh");
    CHECK(r.failure.recoverable());
    CHECK(r.ima_matched);
  }
  SECTION("a known file with another digest: ima.validation.ima-ng.runtime_policy_hash") {
    a.measure(kl::testing::ima_ng_line("/usr/bin/bash", "trojaned bash"));
    const auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), state_for(policy), sev);
    CHECK(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.runtime_policy_hash"});
  }
  SECTION("an unknown template: ima.parser.entry, and the line is not replayed") {
    ImaLine odd = kl::testing::ima_ng_line("/usr/bin/odd", "odd");
    odd.text.replace(odd.text.find(" ima-ng "), 8, " ima-modsig ");
    a.measure(odd);
    const auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), state_for(policy), sev);
    CHECK(ids(r) == std::vector<std::string>{"ima.parser.entry", "ima.pcr_mismatch"});
  }
  SECTION("PCR 10 quoted but no measurement list: pcr_validation.unused_pcr_10") {
    const auto r = evaluate_quote_response(a.response({10, 16}, 0, false), kNonce, ak.get(), state_for(policy), sev);
    CHECK(ids(r) == std::vector<std::string>{"pcr_validation.unused_pcr_10"});
  }
  SECTION("an empty policy accepts nothing") {
    AttestationState st = state_for(policy);
    st.runtime_policy.reset();   // no policy row: upstream's EMPTY_RUNTIME_POLICY
    const auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), st, sev);
    CHECK(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist",
                                             "ima.validation.ima-ng.not_in_allowlist"});
  }
  SECTION("an offset other than the one asked for: qoute_validation.invalid_ima_entry_nb") {
    AttestationState st = state_for(policy);
    st.ima.next_entry = 1;
    st.ima.pcr10 = kl::Bytes(32, 0);
    st.ima.bank = kl::crypto::HashAlg::sha256;
    st.ima.boottime = 1700000000;
    const auto r = evaluate_quote_response(a.response({10, 16}, 2), kNonce, ak.get(), st, sev);
    CHECK(r.failure.has_event("qoute_validation.invalid_ima_entry_nb"));
    CHECK_FALSE(r.failure.recoverable());
  }
  SECTION("the same offset after a reboot: inconclusive, state reset") {
    AttestationState st = state_for(policy);
    st.ima.next_entry = 1;
    st.ima.pcr10 = kl::Bytes(32, 0);
    st.ima.bank = kl::crypto::HashAlg::sha256;
    st.ima.boottime = 1600000000;
    const auto r = evaluate_quote_response(a.response({10, 16}, 1), kNonce, ak.get(), st, sev);
    CHECK(r.inconclusive);
    CHECK_FALSE(r.ok());
    CHECK_FALSE(r.failure.failed());
    CHECK(r.ima.next_entry == 0);
    // Deliberate difference: the quote is still checked; a bad one is a failure, not an inconclusive round.
    const auto bad = evaluate_quote_response(a.response({10, 16}, 1), "anotherNonce00000000", ak.get(), st, sev);
    CHECK_FALSE(bad.inconclusive);
    CHECK(ids(bad) == std::vector<std::string>{"qoute_validation.quote_validation"});
  }
}

namespace {
std::string mb_dir() { return std::string(KL_TESTDATA_DIR) + "/keylime/mb/"; }
kl::Bytes secureboot_log() {
  const std::string s = read_file(mb_dir() + "binary_bios_measurements-secureboot");
  return kl::Bytes(s.begin(), s.end());
}
std::vector<unsigned> boot_pcrs() { return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16}; }
AttestationState mb_state(const std::optional<std::string>& refstate, const std::string& policy_name) {
  AttestationState s;
  s.tpm_policy = kl::quote::parse_tpm_policy_text("{\"mask\": \"0xfbff\"}");
  s.accept_hash_algs = {"sha256"};
  s.accept_enc_algs = {"rsa"};
  s.accept_sign_algs = {"rsassa"};
  s.mb_policy = std::make_shared<const MbPolicyData>(make_mb_policy_data(refstate));
  s.mb_policy_name = policy_name;
  return s;
}
}  // namespace

TEST_CASE("measured boot in the round: the sample UEFI log replays to the quoted PCRs") {
  Agent a;
  kl::ossl::Pkey ak(EVP_PKEY_dup(a.identity.ak_key()));
  a.measure_boot(secureboot_log());
  const kl::SeverityPolicy sev;
  const std::string rhel = read_file(std::string(KL_SOURCE_DIR) + "/policies/mb/rhel9-ovmf-secureboot.json");

  SECTION("accept-all with a reference state: pass") {
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state("{\"any\": 1}", "accept-all"), sev);
    INFO(describe(r));
    CHECK(r.ok());
  }
  SECTION("example policy with the log's own reference state: pass") {
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(rhel, "example"), sev);
    INFO(describe(r));
    CHECK(r.ok());
  }
  SECTION("example policy with upstream's Ubuntu reference state: measured_boot.policy_example") {
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(read_file(mb_dir() + "example_reference_state.json"), "example"),
                                           sev);
    CHECK(ids(r) == std::vector<std::string>{"measured_boot.policy_example"});
  }
  SECTION("a PCR extended outside the log: measured_boot.invalid_pcr_4") {
    a.tpm.pcr_extend(4, kl::Bytes(32, 7));
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(rhel, "example"), sev);
    REQUIRE(ids(r) == std::vector<std::string>{"measured_boot.invalid_pcr_4"});
    CHECK(r.failure.events()[0].context["context"] == "SHA256 boot event log PCR value does not match");
  }
  SECTION("a tampered log (one digest changed) no longer replays: measured_boot.invalid_pcr_<n>") {
    auto log = secureboot_log();
    auto parsed = kl::mb::parse_event_log(log);
    // Flip a byte of the first PCR 4 sha256 digest inside the binary log.
    std::size_t at = 0;
    for (const auto& e : parsed.events)
      if (e.pcr == 4 && e.type != kl::mb::ev::kNoAction) {
        at = e.offset + 14;   // after PCRIndex, EventType, digestCount and the first hashAlg
        break;
      }
    REQUIRE(at > 0);
    log[at] ^= 0xff;
    a.boot_log = log;
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(rhel, "example"), sev);
    // The replay no longer gives the quoted PCR 4, and the changed boot application digest is not in the refstate.
    CHECK(ids(r) == std::vector<std::string>{"measured_boot.invalid_pcr_4", "measured_boot.policy_example"});
  }
  SECTION("no boot log although a policy needs one: pcr_validation.unused_pcr_<n>") {
    a.boot_log.clear();
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(rhel, "example"), sev);
    CHECK(r.failure.has_event("pcr_validation.unused_pcr_0"));
    CHECK(r.failure.has_event("pcr_validation.unused_pcr_14"));
  }
  SECTION("garbage instead of a log: measured_boot.parser.tpm2_eventlog.error") {
    a.boot_log = kl::Bytes(40, 0x11);
    const auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(),
                                           mb_state(rhel, "example"), sev);
    CHECK(ids(r) == std::vector<std::string>{"measured_boot.parser.tpm2_eventlog.error"});
  }
  SECTION("once: the policy is evaluated on the first attestation only") {
    auto st = mb_state(read_file(mb_dir() + "example_reference_state.json"), "example");
    st.attestation_count = 3;
    auto r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(), st, sev);
    CHECK(r.ok());
    st.mb_evaluate_always = true;
    r = evaluate_quote_response(a.response(boot_pcrs(), 0, false), kNonce, ak.get(), st, sev);
    CHECK(ids(r) == std::vector<std::string>{"measured_boot.policy_example"});
  }
  SECTION("boot aggregates from the log are accepted for IMA's boot_aggregate entry") {
    auto parsed = kl::mb::parse_boot_log(secureboot_log());
    const std::string agg = parsed.data["boot_aggregates"]["sha256"][0].get<std::string>();
    a.measure(kl::testing::ima_ng_line_digest("boot_aggregate", agg));
    auto policy = kl::testing::runtime_policy_for({kl::testing::ima_ng_line("/x", "x")});
    auto st = mb_state("{\"any\": 1}", "accept-all");
    st.runtime_policy = kl::policy::CompiledPolicy::compile(policy);
    auto pcrs = boot_pcrs();
    pcrs.push_back(10);
    auto r = evaluate_quote_response(a.response(pcrs), kNonce, ak.get(), st, sev);
    INFO(describe(r));
    CHECK(r.ok());
    // Without the boot log, boot_aggregate is not in the policy.
    a.boot_log.clear();
    st.mb_policy.reset();
    r = evaluate_quote_response(a.response(pcrs), kNonce, ak.get(), st, sev);
    CHECK(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});
  }
}

TEST_CASE("IMA in the round: signed ima-sig entries pass with the tenant's keyring (ima_sign_verification_keys)") {
  Agent a;
  kl::ossl::Pkey ak(EVP_PKEY_dup(a.identity.ak_key()));
  const std::string dir = std::string(KL_TESTDATA_DIR) + "/keylime/ima/";
  std::istringstream lines(read_file(dir + "signatures.ima-sig.txt"));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) a.measure(kl::testing::ima_line_from_text(line));
  REQUIRE(a.lines.size() == 2);
  AttestationState st = state_for(kl::testing::runtime_policy_for({}));   // a policy allowing no file
  const kl::SeverityPolicy sev;

  auto r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), st, sev);
  CHECK(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist",
                                           "ima.validation.ima-ng.not_in_allowlist"});
  kl::ima::ImaKeyring both;
  both.add(kl::ima::load_public_key_pem(read_file(dir + "rsa2048pub.pem")));
  both.add(kl::ima::load_public_key_pem(read_file(dir + "secp256k1.pem")));
  st.tenant_keyring = both;
  r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), st, sev);
  INFO(describe(r));
  CHECK(r.ok());   // the signatures verify: the digests are not needed
  // Only the RSA key: the EC-signed line falls back to the (empty) digests.
  kl::ima::ImaKeyring rsa_only;
  rsa_only.add(kl::ima::load_public_key_pem(read_file(dir + "rsa2048pub.pem")));
  st.tenant_keyring = rsa_only;
  r = evaluate_quote_response(a.response({10, 16}), kNonce, ak.get(), st, sev);
  REQUIRE(ids(r) == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});
  CHECK(r.failure.events()[0].context["message"] == "File not found in allowlist: /usr/bin/zmore");
}
