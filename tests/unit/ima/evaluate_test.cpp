#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/evaluate.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "ima_test_util.hpp"

using namespace kl;
using namespace kl::ima;
using kl::policy::CompiledPolicy;
using kl::test_ima::load_json;
using kl::test_ima::make_ima_ng_line;
using kl::test_ima::slurp;
using crypto::HashAlg;

namespace {

using PolicyPtr = std::shared_ptr<const CompiledPolicy>;

PolicyPtr pol(const std::string& rel) { return CompiledPolicy::compile(load_json(rel)); }
PolicyPtr empty_pol() { return CompiledPolicy::compile(policy::empty_runtime_policy()); }

PublicKey key(const std::string& rel) { return load_public_key_pem(slurp(rel)); }

ImaKeyring ring_with(std::initializer_list<const char*> files) {
  ImaKeyring r;
  for (auto f : files) r.add(key(f));
  return r;
}

struct Run {
  Run(std::string t, PolicyPtr p = nullptr, bool k = false, std::optional<ImaKeyring> ten = std::nullopt,
      ImaState* s = nullptr)
      : text(std::move(t)), policy(std::move(p)), keyrings(k), tenant(std::move(ten)), state(s) {}
  std::string text;
  PolicyPtr policy;
  bool keyrings = false;
  std::optional<ImaKeyring> tenant;
  ImaState* state = nullptr;
  std::optional<Bytes> quoted;
  std::vector<std::string> boot_aggregates;
  bool tomtou = false;
  ProcessResult go() const {
    ProcessOptions o;
    o.bank = HashAlg::sha1;
    o.policy = policy;
    o.use_keyrings = keyrings;
    o.tenant_keyring = tenant;
    o.quoted_pcr10 = quoted;
    o.boot_aggregates = boot_aggregates;
    o.ignore_tomtou_errors = tomtou;
    return process_measurement_list(text, o, state);
  }
};

std::string nth_line(const std::string& text, int n) {
  std::size_t pos = 0;
  for (int i = 0; i < n; ++i) pos = text.find('\n', pos) + 1;
  auto end = text.find('\n', pos);
  return text.substr(pos, end == std::string::npos ? std::string::npos : end - pos) + "\n";
}

}  // namespace

TEST_CASE("measurements.ima-sig.txt verdicts", "[ima][evaluate][samples]") {
  const auto m = slurp("ima/measurements.ima-sig.txt");
  for (bool with_state : {true, false}) {
    // a fresh agent state per round, as upstream's test does (without a quoted PCR the progress
    // rule would otherwise flag the second round)
    ImaState st1, st2, st3;
    auto s = [&](ImaState& x) { return with_state ? &x : nullptr; };
    CHECK_FALSE(Run{m, nullptr, false, {}, s(st1)}.go().failure.failed());          // no policy, no keyring
    CHECK_FALSE(Run{m, pol("ima/runtime-policy-test.json"), false, {}, s(st2)}.go().failure.failed());
    auto r = Run{m, empty_pol(), false, {}, s(st3)}.go();
    CHECK(r.failure.failed());
    CHECK(r.failure.event_ids() == std::vector<std::string>(3, "ima.validation.ima-ng.not_in_allowlist"));
    CHECK(r.failure.events()[0].context_text() == R"({"message": "File not found in allowlist: boot_aggregate"})");
  }
}

TEST_CASE("signatures.ima-sig.txt verdicts", "[ima][evaluate][samples][signatures]") {
  const auto sigs = slurp("ima/signatures.ima-sig.txt");
  const auto line1 = nth_line(sigs, 0), line2 = nth_line(sigs, 1);
  // empty keyring, no policy: fail
  auto r = Run{sigs, nullptr, true}.go();
  CHECK(r.failure.event_ids() ==
        std::vector<std::string>(2, "ima.validator.ima-sig.invalid_signature"));
  CHECK(r.failure.events()[0].context_text() ==
        R"({"message": "signature for file /usr/bin/dd could not be validated"})");
  // RSA key only: line 1 passes, line 2 fails
  auto rsa = ring_with({"ima/rsa2048pub.pem"});
  CHECK_FALSE(Run{line1, nullptr, true, rsa}.go().failure.failed());
  CHECK(Run{line2, nullptr, true, rsa}.go().failure.failed());
  // both keys: pass; also with the wrong or the empty policy (the signature wins)
  auto both = ring_with({"ima/rsa2048pub.pem", "ima/secp256k1.pem"});
  CHECK_FALSE(Run{sigs, nullptr, true, both}.go().failure.failed());
  CHECK_FALSE(Run{sigs, pol("ima/runtime-policy-wrong.json"), true, both}.go().failure.failed());
  CHECK_FALSE(Run{sigs, empty_pol(), true, both}.go().failure.failed());
  // no keys + the right policy: digest fallback passes
  CHECK_FALSE(Run{sigs, pol("ima/runtime-policy-test.json"), true, ImaKeyring{}}.go().failure.failed());
  // no keys + the wrong policy: failures are reported as ima-ng events with the expected list
  auto w = Run{sigs, pol("ima/runtime-policy-wrong.json"), true, ImaKeyring{}}.go();
  REQUIRE(w.failure.events().size() == 2);
  CHECK(w.failure.events()[0].event_id == "ima.validation.ima-ng.runtime_policy_hash");
  CHECK(w.failure.events()[0].context ==
        nlohmann::json{{"message", "Hash not found in runtime policy"},
                       {"got", "d33d5d13792292e202dbf69a6f1b07bc8a02f01424db8489ba7bb7d43c0290ef"},
                       {"expected", {"bad05d13792292e202dbf69a6f1b07bc8a02f01424db8489ba7bb7d43c0290ef"}}});
  // keys from the policy's verification-keys
  CHECK_FALSE(Run{sigs, pol("ima/runtime-policy-with-verification-keys.json"), true}.go().failure.failed());
  CHECK(Run{sigs, pol("ima/runtime-policy-with-verification-keys.json"), false}.go().failure.failed());
}

TEST_CASE("combined.ima-sig.txt verdicts", "[ima][evaluate][samples]") {
  const auto c = slurp("ima/combined.ima-sig.txt");
  auto both = ring_with({"ima/rsa2048pub.pem", "ima/secp256k1.pem"});
  CHECK_FALSE(Run{c, pol("ima/runtime-policy-test.json")}.go().failure.failed());
  auto keys_only = Run{c, nullptr, true, both}.go();
  CHECK(keys_only.failure.failed());
  CHECK(keys_only.failure.event_ids() == std::vector<std::string>(3, "ima.validator.ima-sig.invalid_signature"));
  CHECK_FALSE(Run{c, pol("ima/runtime-policy-test.json"), true, both}.go().failure.failed());
}

TEST_CASE("excludes: wrong digests but excluded paths pass", "[ima][evaluate][samples]") {
  const auto m = slurp("ima/measurements.ima-sig.txt");
  const auto sigs = slurp("ima/signatures.ima-sig.txt");
  auto both = ring_with({"ima/rsa2048pub.pem", "ima/secp256k1.pem"});
  CHECK_FALSE(Run{m, pol("ima/runtime-policy-wrong-with-excludes.json")}.go().failure.failed());
  CHECK_FALSE(Run{m, pol("ima/runtime-policy-wrong-with-excludes.json"), true, both}.go().failure.failed());
  CHECK_FALSE(Run{sigs, pol("ima/runtime-policy-with-excludes.json"), true, both}.go().failure.failed());
}

TEST_CASE("bad-signatures.ima-sig.txt: malformed signature is dropped, template hash fails", "[ima][evaluate][samples]") {
  const auto b = slurp("ima/bad-signatures.ima-sig.txt");
  for (const char* p : {"ima/runtime-policy-with-excludes.json", "ima/runtime-policy-test.json"}) {
    INFO(p);
    auto r = Run{b, pol(p), true, ImaKeyring{}}.go();
    REQUIRE(r.failure.events().size() == 1);
    const auto& ev = r.failure.events()[0];
    CHECK(ev.event_id == "ima.validation.ima_hash");
    CHECK(ev.context["message"] == "IMA template hash does not match the calculated hash.");
    CHECK(ev.context["expected"].get<std::string>().rfind("b']MQA", 0) == 0);  // Python repr of 5d4d5141...
  }
}

TEST_CASE("keyrings.ima-buf.txt: key accepted by the policy is learned", "[ima][evaluate][samples][keyrings]") {
  const auto k = slurp("ima/keyrings.ima-buf.txt");
  ImaState st;
  auto r = Run{k, pol("ima/runtime-policy-test.json"), true, {}, &st}.go();
  CHECK_FALSE(r.failure.failed());
  REQUIRE(st.learned_keyrings.keyrings().count(".ima") == 1);
  CHECK(st.learned_keyrings.keyrings().at(".ima").size() == 1);
  // the certificate's Subject Key Identifier gives the keyid (last 4 bytes b6fb...058c)
  CHECK(st.learned_keyrings.keyrings().at(".ima").find(0x2cb6058c) != nullptr);
  // learned keyrings survive serialisation
  auto back = ImaState::from_json(nlohmann::json::parse(st.to_json().dump()));
  CHECK(back.learned_keyrings.keyrings().at(".ima").size() == 1);

  // empty policy: keyrings[".ima"] missing -> not_in_allowlist, nothing learned, state reset
  ImaState st2;
  auto r2 = Run{k, empty_pol(), true, {}, &st2}.go();
  CHECK(r2.failure.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});
  CHECK(st2.learned_keyrings.empty());

  // ignored keyring: accepted without learning
  auto j = load_json("ima/runtime-policy-test.json");
  j["keyrings"] = nlohmann::json::object();
  j["ima"]["ignored_keyrings"] = {".ima"};
  ImaState st3;
  CHECK_FALSE(Run{k, CompiledPolicy::compile(j), true, {}, &st3}.go().failure.failed());
  CHECK(st3.learned_keyrings.empty());
  j["ima"]["ignored_keyrings"] = {"*"};
  ImaState st4;
  CHECK_FALSE(Run{k, CompiledPolicy::compile(j), true, {}, &st4}.go().failure.failed());
  CHECK(st4.learned_keyrings.empty());
}

TEST_CASE("ima-buf that is not a key is checked against ima-buf digests", "[ima][evaluate]") {
  auto doc = load_json("ima/ast-entries.json");
  const std::string line = doc["valid"]["ima-buf"]["line"];
  auto r = Run{line, empty_pol()}.go();
  CHECK(r.failure.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});
  auto j = policy::to_json(policy::empty_runtime_policy());
  j["ima-buf"]["device_resume"] = {"6e0e6fc8a188ef4f059638949adca4d221946906"};
  CHECK_FALSE(Run{line, CompiledPolicy::compile(j)}.go().failure.failed());
}

TEST_CASE("ima-keyring.json loads with its keyids - the bad one is rejected", "[ima][keyring]") {
  auto ring = ImaKeyring::from_string(slurp("ima/ima-keyring.json"));
  REQUIRE(ring);
  CHECK(ring->size() == 2);
  CHECK(ring->find(4081397027u));
  CHECK(ring->find(1394556965u));
  // computed keyids agree with the stored ones
  CHECK(keyidv2_of(ring->find(4081397027u)) == std::optional<std::uint32_t>(4081397027u));
  CHECK(keyidv2_of(ring->find(1394556965u)) == std::optional<std::uint32_t>(1394556965u));
  CHECK(keyidv2_of(key("ima/rsa2048pub.pem").get()) == std::optional<std::uint32_t>(4081397027u));
  CHECK(keyidv2_of(key("ima/secp256k1.pem").get()) == std::optional<std::uint32_t>(1394556965u));
  // round trip
  auto again = ImaKeyring::from_string(ring->to_json().dump());
  REQUIRE(again);
  CHECK(again->to_json() == ring->to_json());
  CHECK(ring->to_json() == load_json("ima/ima-keyring.json"));
  CHECK_FALSE(ImaKeyring::from_string(slurp("ima/ima-keyring-bad.json")));
  CHECK_FALSE(ImaKeyring::from_string(""));
  CHECK_FALSE(ImaKeyring::from_string("not json"));
  // a JSON string holding the keyring is decoded twice
  CHECK(ImaKeyring::from_string(nlohmann::json(slurp("ima/ima-keyring.json")).dump()));
}

TEST_CASE("signature verification details", "[ima][keyring][signatures]") {
  auto both = ring_with({"ima/rsa2048pub.pem", "ima/secp256k1.pem"});
  auto doc = load_json("ima/ast-entries.json");
  Entry rsa = parse_entry(doc["valid"]["ima-sig-rsa"]["line"].get<std::string>());
  ImaKeyrings none;
  CHECK(verify_file_signature(none, &both, *rsa.signature, rsa.digest.hash, "sha256"));
  CHECK_FALSE(verify_file_signature(none, &both, *rsa.signature, rsa.digest.hash, "sha1"));  // algorithm mismatch
  Bytes wrong = rsa.digest.hash;
  wrong[0] ^= 1;
  CHECK_FALSE(verify_file_signature(none, &both, *rsa.signature, wrong, "sha256"));
  Bytes sig = *rsa.signature;
  sig[0] = 4;  // wrong xattr type
  CHECK_FALSE(verify_file_signature(none, &both, sig, rsa.digest.hash, "sha256"));
  sig = *rsa.signature;
  sig[1] = 1;  // version 1
  CHECK_FALSE(verify_file_signature(none, &both, sig, rsa.digest.hash, "sha256"));
  CHECK_FALSE(verify_file_signature(none, &both, Bytes{3}, rsa.digest.hash, "sha256"));
  CHECK_FALSE(verify_file_signature(none, nullptr, *rsa.signature, rsa.digest.hash, "sha256"));  // no key
}

TEST_CASE("violation entries and the tomtou quirk", "[ima][evaluate]") {
  const auto log = slurp("create-runtime-policy/ima-log-sha1");
  auto j = policy::to_json(policy::empty_runtime_policy());
  j["digests"]["/data"] = {"009b0d8ee8fb8d890fa70f9c8e02b3f1eded1509"};
  auto p = CompiledPolicy::compile(j);
  CHECK_FALSE(Run{log, p}.go().failure.failed());  // boot_aggregate violation: not validated at all
  Run t{log, p};
  t.tomtou = true;
  CHECK(t.go().failure.event_ids() == std::vector<std::string>{"ima.validation.tomtou"});
}

TEST_CASE("PCR column, parser errors and PCR mismatch events", "[ima][evaluate]") {
  const auto line = make_ima_ng_line("/usr/bin/x", "x", "11");
  auto r = Run{line + "\ngarbage\n", nullptr}.go();
  CHECK(r.failure.event_ids() == std::vector<std::string>{"ima.validation.ima_pcr", "ima.parser.entry"});
  CHECK(r.failure.events()[0].context == nlohmann::json{{"message", "IMA PCR is not the configured one"},
                                                        {"expected", "10"}, {"got", "11"}});
  CHECK(r.failure.events()[1].context_text() ==
        R"({"message": "Line was not parsable into a valid IMA entry: garbage"})");
  Run m{slurp("ima/measurements.ima-sig.txt"), nullptr};
  m.quoted = Bytes(20, 0x11);
  auto mm = m.go();
  CHECK(mm.failure.event_ids() == std::vector<std::string>{"ima.pcr_mismatch"});
  CHECK(mm.failure.events()[0].context["message"] ==
        "IMA measurement list does not match TPM PCR " + std::string(40, '1'));
}

TEST_CASE("boot aggregates from the measured boot log extend the policy", "[ima][evaluate]") {
  const auto m = nth_line(slurp("ima/measurements.ima-sig.txt"), 0);  // boot_aggregate line
  Run r{m, empty_pol()};
  r.boot_aggregates = {"e4cb9f5709c88376b5fc3743cd88e76b9aae8f3d992d845678de5215edb31216"};
  CHECK_FALSE(r.go().failure.failed());
  r.boot_aggregates = {"00"};
  auto f = r.go();
  REQUIRE(f.failure.events().size() == 1);
  CHECK(f.failure.events()[0].event_id == "ima.validation.ima-ng.runtime_policy_hash");
  CHECK(f.failure.events()[0].context["expected"] == nlohmann::json{"00"});
}

TEST_CASE("incremental attestation through the state equals upstream's iterative test", "[ima][incremental]") {
  const auto text = slurp("ima/measurements.ima-sig.txt");
  ImaState st;
  Bytes running(20, 0);
  std::uint64_t expected_next = 0;
  std::string pcrval;
  for (int i = 0; i < 3; ++i) {
    Entry e = parse_entry(nth_line(text, i).substr(0, nth_line(text, i).size() - 1));
    Bytes cat = running;
    cat.insert(cat.end(), e.template_hash.begin(), e.template_hash.end());
    running = crypto::digest(HashAlg::sha1, cat);
    Run r{nth_line(text, i), nullptr, false, {}, &st};
    r.quoted = running;
    auto res = r.go();
    CHECK_FALSE(res.failure.failed());
    CHECK(res.running_pcr_hex == hex_encode(running));
    expected_next += 1;
    CHECK(st.next_entry == expected_next);
    CHECK(st.pcr10 == running);
  }
  // no new entries: the saved value still matches the quote
  Run empty{"", nullptr, false, {}, &st};
  empty.quoted = running;
  auto res = empty.go();
  CHECK_FALSE(res.failure.failed());
  CHECK(res.running_pcr_hex == hex_encode(running));
  CHECK(st.next_entry == 3);
  // a failure resets the state: the next round asks for the whole log
  Run bad{"", nullptr, false, {}, &st};
  bad.quoted = Bytes(20, 0x99);
  CHECK(bad.go().failure.failed());
  CHECK(st.next_entry == 0);
  CHECK_FALSE(st.pcr10);
}

TEST_CASE("incremental evaluation equals a full evaluation (state persisted as JSON between rounds)",
          "[ima][incremental]") {
  std::vector<std::string> lines;
  for (int i = 0; i < 30; ++i) lines.push_back(make_ima_ng_line("/bin/f" + std::to_string(i), "c" + std::to_string(i)));
  auto j = policy::to_json(policy::empty_runtime_policy());
  for (int i = 0; i < 30; ++i)
    j["digests"]["/bin/f" + std::to_string(i)] = {
        hex_encode(crypto::digest(HashAlg::sha256, as_bytes("c" + std::to_string(i))))};
  auto p = CompiledPolicy::compile(j);
  std::string all;
  for (auto& l : lines) all += l + "\n";
  ProcessOptions o;
  o.bank = HashAlg::sha256;
  o.policy = p;
  auto full = replay_pcr10(all, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt);
  o.quoted_pcr10 = full.final_value;
  ImaState fresh;
  auto fr = process_measurement_list(all, o, &fresh);
  CHECK_FALSE(fr.failure.failed());
  CHECK(fresh.next_entry == 30);

  // rounds of 7 lines; the agent sends from next_entry to the end of its current log
  nlohmann::json saved = ImaState{}.to_json();
  std::size_t available = 0;
  while (available < lines.size()) {
    available = std::min(lines.size(), available + 7);
    ImaState st = ImaState::from_json(saved);
    std::string part;
    for (std::size_t i = st.next_entry; i < available; ++i) part += lines[i] + "\n";
    std::string upto;
    for (std::size_t i = 0; i < available; ++i) upto += lines[i] + "\n";
    o.quoted_pcr10 = replay_pcr10(upto, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt).final_value;
    auto r = process_measurement_list(part, o, &st);
    CHECK_FALSE(r.failure.failed());
    CHECK(st.next_entry == available);
    saved = st.to_json();
  }
  CHECK(ImaState::from_json(saved).pcr10 == full.final_value);
}

TEST_CASE("the seed story: an untrusted script appended to a trusted log", "[ima][evaluate][story]") {
  std::string log;
  auto j = policy::to_json(policy::empty_runtime_policy());
  for (int i = 0; i < 5; ++i) {
    const std::string path = "/usr/bin/tool" + std::to_string(i);
    log += make_ima_ng_line(path, path) + "\n";
    j["digests"][path] = {hex_encode(crypto::digest(HashAlg::sha256, as_bytes(path)))};
  }
  auto p = CompiledPolicy::compile(j);
  ImaState st;
  ProcessOptions o;
  o.bank = HashAlg::sha256;
  o.policy = p;
  o.quoted_pcr10 = replay_pcr10(log, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt).final_value;
  CHECK_FALSE(process_measurement_list(log, o, &st).failure.failed());
  const std::string evil = make_ima_ng_line("/root/evil.sh", "#!/bin/sh\nrm -rf /\n") + "\n";
  o.quoted_pcr10 = replay_pcr10(log + evil, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt).final_value;
  auto r = process_measurement_list(evil, o, &st);
  REQUIRE(r.failure.events().size() == 1);
  CHECK(r.failure.events()[0].event_id == "ima.validation.ima-ng.not_in_allowlist");
  CHECK(r.failure.events()[0].context_text() == R"({"message": "File not found in allowlist: /root/evil.sh"})");
  CHECK(st.next_entry == 0);  // reset: the next poll replays from the start
}
