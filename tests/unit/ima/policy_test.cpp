#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "common/attest/policy/dsse.hpp"
#include "common/attest/policy/exclude_regex.hpp"
#include "common/attest/policy/legacy_conversion.hpp"
#include "common/attest/policy/policy_upload.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "ima_test_util.hpp"

#include <openssl/pem.h>

using namespace kl;
using namespace kl::policy;
using kl::test_ima::load_json;
using kl::test_ima::slurp;

namespace {
ossl::Pkey private_key(const std::string& rel) {
  const auto pem = slurp(rel);
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return ossl::Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}
std::string sha256_hex(const std::string& s) { return hex_encode(crypto::digest(crypto::HashAlg::sha256, as_bytes(s))); }
}  // namespace

TEST_CASE("schema: complete policies pass, incomplete ones name the problem", "[policy][schema]") {
  for (const char* f : {"sign-runtime-policy/runtime-policy.json", "sign-runtime-policy/runtime-policy-empty.json",
                        "ima/runtime-policy-with-verification-keys.json", "create-runtime-policy/policy-sha1",
                        "create-runtime-policy/policy-sha256", "create-runtime-policy/policy-sha384",
                        "create-runtime-policy/policy-sha512", "create-runtime-policy/policy-sm3_256",
                        "create-runtime-policy/policy-unknown"}) {
    INFO(f);
    CHECK(schema_error(load_json(f)) == std::nullopt);
  }
  CHECK(schema_error(load_json("ima/runtime-policy-test.json")) == "'release' is a required property");
  // the upstream signed test policy keeps "sha256:<hex>" in digests: not schema-valid
  auto rp = schema_error(load_json("runtime-policy/runtime-policy-test.json"));
  REQUIRE(rp);
  CHECK(rp->find("does not match '^[0-9a-f]{40,128}$'") != std::string::npos);
  CHECK(schema_error(to_json(empty_runtime_policy())) == std::nullopt);

  auto base = to_json(empty_runtime_policy());
  auto broken = [&](auto mutate) {
    auto j = base;
    mutate(j);
    return schema_error(j).value_or("valid");
  };
  CHECK(broken([](auto& j) { j["meta"]["generator"] = 4; }) == "4 is greater than the maximum of 3");
  CHECK(broken([](auto& j) { j["release"] = -1; }) == "-1 is less than the minimum of 0");
  CHECK(broken([](auto& j) { j["digests"]["/a"] = nlohmann::json::array(); }) == "[] should be non-empty");
  CHECK(broken([](auto& j) { j["digests"]["/a"] = {"ABCDEF0123456789ABCDEF0123456789ABCDEF01"}; }) != "valid");
  CHECK(broken([](auto& j) { j["digests"]["/a"] = {"abc"}; }) != "valid");
  CHECK(broken([](auto& j) { j["ima"]["log_hash_alg"] = "md5"; }) != "valid");
  CHECK(broken([](auto& j) { j["ima"]["dm_policy"] = nlohmann::json::object(); }) == "{} is not of type 'null'");
  CHECK(broken([](auto& j) { j["verification-keys"] = "{\"pubkeys\": []}"; }) ==
        "verification-keys is not a valid IMA keyring");
  CHECK(broken([](auto& j) { j.erase("ima-buf"); }) == "'ima-buf' is a required property");
  CHECK(broken([](auto& j) { j["excludes"] = {1}; }) == "1 is not of type 'string'");
  CHECK(broken([](auto& j) { j["keyrings"]["x"] = {std::string(130, 'a')}; }) != "valid");
}

TEST_CASE("model round trip and upstream serialisation", "[policy][model]") {
  const auto text = slurp("create-runtime-policy/policy-sha256");
  auto p = runtime_policy_from_json(nlohmann::json::parse(text));
  CHECK(p.meta.generator == 3);
  CHECK(p.meta.timestamp == std::optional<std::string>("2024-09-12 13:44:44.797331"));
  CHECK(p.digests.at("/base_policy_data").size() == 1);
  CHECK(to_text(p) + "\n" == text);  // byte-identical to Python's json.dumps
  CHECK(to_json(runtime_policy_from_json(to_json(p))) == to_json(p));
  CHECK(p.has_runtime_policy());
  CHECK_FALSE(empty_runtime_policy().has_runtime_policy());
  CHECK_THROWS_AS(runtime_policy_from_json(nlohmann::json::parse(R"({"digests": []})")), ParseError);
  CHECK_THROWS_AS(runtime_policy_from_json(nlohmann::json::parse(R"({"digests": {"/a": [1]}})")), ParseError);
  CHECK_THROWS_AS(runtime_policy_from_json(nlohmann::json::parse(R"([])")), ParseError);
  // upstream's test policy lacks release/generator: read with defaults
  auto t = runtime_policy_from_json(load_json("ima/runtime-policy-test.json"));
  CHECK(t.release == 0);
  CHECK(t.meta.generator == 0);
  CHECK(t.digests.size() == 6);
}

TEST_CASE("runtime-policy/ samples: checksum, DSSE good and bad", "[policy][dsse]") {
  CHECK(sha256_hex(slurp("runtime-policy/runtime-policy-test.json")) ==
        "64608ceb82d6d6459e8ac5ffd19865d670d1fe99417e10f20446de5d125bc4ab");
  const auto signed_text = slurp("runtime-policy/runtime-policy-test-signed.json");
  CHECK(sha256_hex(signed_text) == "ed42c2beda1207061187a5e03b1faaf4cb3e2ff57121cb823ac92b536800e027");
  auto key = ima::load_public_key_pem(slurp("runtime-policy/runtime-policy-pubkey.pub"));
  auto env = dsse::parse_envelope(nlohmann::json::parse(signed_text));
  CHECK(env.payload_type == dsse::kKeylimePayloadType);
  CHECK(dsse::verify_with_key(env, key.get()));
  CHECK(nlohmann::json::parse(env.payload) == load_json("runtime-policy/runtime-policy-test.json"));
  CHECK(dsse::keyid_of(key.get()) == env.signatures.at(0).keyid);

  auto bad = nlohmann::json::parse(slurp("runtime-policy/runtime-policy-test-signed-bad.json"));
  CHECK(dsse::is_envelope(bad));
  CHECK_FALSE(dsse::verify_with_key(dsse::parse_envelope(bad), key.get()));
  // tampered payload
  auto tampered = env;
  tampered.payload.back() ^= 1;
  CHECK_FALSE(dsse::verify_with_key(tampered, key.get()));
  // other key
  auto other = ima::load_public_key_pem(slurp("sign-runtime-policy/ec-p521-public.pem"));
  CHECK_FALSE(dsse::verify_with_key(env, other.get()));
}

TEST_CASE("DSSE field decoding and PAE", "[policy][dsse]") {
  CHECK(as_string(dsse::pae("t", as_bytes("hello"))) == "DSSEv1 1 t 5 hello");
  CHECK(dsse::decode_field("68656c6c6f") == std::optional<Bytes>(Bytes{'h', 'e', 'l', 'l', 'o'}));  // hex first
  CHECK(dsse::decode_field("aGVsbG8=") == std::optional<Bytes>(Bytes{'h', 'e', 'l', 'l', 'o'}));
  CHECK(dsse::decode_field("-_8=") == std::optional<Bytes>(Bytes{0xfb, 0xff}));  // URL-safe fallback
  CHECK_FALSE(dsse::decode_field("!!!"));
  CHECK_FALSE(dsse::decode_field("aGVsbG8"));  // padding required as Python's validate=True
  CHECK_FALSE(dsse::is_envelope(nlohmann::json::parse(R"({"payload": ""})")));
  CHECK_FALSE(dsse::is_envelope(nlohmann::json::parse(R"({"digests": {}})")));
  CHECK_THROWS_AS(dsse::parse_envelope(nlohmann::json::parse(R"({"payload": "aGVsbG8="})")), ParseError);
  CHECK_THROWS_AS(dsse::parse_envelope(nlohmann::json::parse(R"({"payload": "@@", "payloadType": "x", "signatures": []})")),
                  ParseError);
}

TEST_CASE("sign-runtime-policy: EC keys sign, RSA is rejected, bogus JSON fails", "[policy][dsse]") {
  auto ec = private_key("sign-runtime-policy/ec-p521-private.pem");
  REQUIRE(ec);
  auto pub = ima::load_public_key_pem(slurp("sign-runtime-policy/ec-p521-public.pem"));
  for (const char* f : {"sign-runtime-policy/runtime-policy.json", "sign-runtime-policy/runtime-policy-empty.json"}) {
    INFO(f);
    const auto text = slurp(f);
    auto env = dsse::sign(as_bytes(text), dsse::kKeylimePayloadType, ec.get());
    CHECK(env["signatures"][0]["keyid"] == dsse::keyid_of(pub.get()));
    CHECK(dsse::verify_with_key(dsse::parse_envelope(env), pub.get()));
    UploadOptions opt{true, slurp("sign-runtime-policy/ec-p521-public.pem")};
    auto accepted = accept_runtime_policy(env.dump(), opt);
    REQUIRE(std::holds_alternative<AcceptedPolicy>(accepted));
    CHECK(std::get<AcceptedPolicy>(accepted).generator == 3);
  }
  auto rsa = private_key("sign-runtime-policy/rsa-4096-private.pem");
  REQUIRE(rsa);
  CHECK_THROWS_AS(dsse::sign(as_bytes("{}"), dsse::kKeylimePayloadType, rsa.get()), std::invalid_argument);
  CHECK(nlohmann::json::parse(slurp("sign-runtime-policy/runtime-policy-bogus.json"), nullptr, false).is_discarded());
}

TEST_CASE("upload acceptance: codes and messages", "[policy][upload]") {
  const auto plain = slurp("sign-runtime-policy/runtime-policy.json");
  const auto signed_text = slurp("runtime-policy/runtime-policy-test-signed.json");
  const auto pub = slurp("runtime-policy/runtime-policy-pubkey.pub");
  auto err = [](const auto& v) {
    REQUIRE(std::holds_alternative<PolicyUploadError>(v));
    const auto& e = std::get<PolicyUploadError>(v);
    return std::to_string(e.code) + " " + e.message;
  };
  auto ok = accept_runtime_policy(plain, {});
  REQUIRE(std::holds_alternative<AcceptedPolicy>(ok));
  CHECK(std::get<AcceptedPolicy>(ok).checksum == sha256_hex(plain));
  CHECK(std::get<AcceptedPolicy>(ok).stored_text == plain);

  CHECK(err(accept_runtime_policy(slurp("sign-runtime-policy/runtime-policy-bogus.json"), {})) ==
        "400 Runtime policy is not valid JSON!");
  CHECK(err(accept_runtime_policy(plain, {true, std::nullopt})) ==
        "401 Runtime policy signature verification required but no key was given!");
  CHECK(err(accept_runtime_policy(plain, {true, pub})) == "400 Runtime policy is not signed!");
  CHECK(err(accept_runtime_policy(slurp("runtime-policy/runtime-policy-test-signed-bad.json"), {true, pub})) ==
        "401 Runtime policy failed DSSE signature verification!");
  // the good envelope verifies, then its payload fails the schema ("sha256:" prefixed digest)
  auto s = err(accept_runtime_policy(signed_text, {true, pub}));
  CHECK(s.rfind("400 Runtime policy is malformatted: ", 0) == 0);
  CHECK(err(accept_runtime_policy(slurp("ima/runtime-policy-test.json"), {})) ==
        "400 Runtime policy is malformatted: 'release' is a required property");
  auto j = nlohmann::json::parse(plain);
  j["excludes"] = {"(unclosed"};
  auto bad_regex = err(accept_runtime_policy(j.dump(), {}));
  CHECK(bad_regex.rfind("400 Invalid regex: ", 0) == 0);
  CHECK(bad_regex.find("Exclude list regex is misformatted. Please correct the issue and try again.") != std::string::npos);
  // deserialisation during attestation uses the payload
  CHECK(deserialize_runtime_policy(signed_text) == load_json("runtime-policy/runtime-policy-test.json"));
  CHECK_THROWS_AS(deserialize_runtime_policy("{"), ParseError);
}

TEST_CASE("exclude regexes follow Python re.match", "[policy][regex]") {
  ExcludeRegex r({"/usr/bin/dd", "/tmp/.*", "boot_aggregate$"});
  CHECK(r.pattern() == "(/usr/bin/dd)|(/tmp/.*)|(boot_aggregate$)");
  CHECK(r.matches("/usr/bin/dd"));
  CHECK(r.matches("/usr/bin/ddx"));    // prefix match: not anchored at the end
  CHECK_FALSE(r.matches("x/usr/bin/dd"));  // anchored at the start
  CHECK(r.matches("/tmp/a/b"));
  CHECK(r.matches("boot_aggregate"));
  CHECK(r.matches("boot_aggregate\n"));  // Python '$' also matches before a final newline
  CHECK_FALSE(r.matches("boot_aggregate2"));
  ExcludeRegex z({"abc\\Z"});
  CHECK(z.matches("abc"));
  CHECK_FALSE(z.matches("abc\n"));
  ExcludeRegex q({"a{,2}b"});
  CHECK(q.matches("aab"));
  CHECK(q.matches("b"));
  ExcludeRegex named({"(?P<dir>/opt)/(?P=dir)"});
  CHECK(named.matches("/opt//opt"));
  ExcludeRegex unicode({"\\w+$"});
  CHECK(unicode.matches("caf\xc3\xa9"));
  ExcludeRegex none({});
  CHECK(none.empty());
  CHECK_FALSE(none.matches("/anything"));
  CHECK_THROWS_AS(ExcludeRegex({"(unclosed"}), std::invalid_argument);
  CHECK_THROWS_AS(ExcludeRegex({"\\p{L}"}), std::invalid_argument);  // bad escape in Python
  CHECK_THROWS_AS(ExcludeRegex({"*a"}), std::invalid_argument);
  try {
    ExcludeRegex({"[a-"});
    FAIL("accepted a bad regex");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).rfind("Invalid regex: ", 0) == 0);
  }
  // invalid UTF-8 in a path does not crash and does not match a UTF-8-only pattern
  ExcludeRegex p({"/x"});
  CHECK_FALSE(p.matches("\xff\xfe"));
}

TEST_CASE("compiled policy lookups", "[policy][compiled]") {
  auto j = to_json(empty_runtime_policy());
  j["digests"]["/a"] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
                        "sha256:cccc"};
  j["ima"]["log_hash_alg"] = "sha256";
  j["ima"]["ignored_keyrings"] = {".builtin"};
  j["verification-keys"] = slurp("ima/ima-keyring.json");
  auto c = CompiledPolicy::compile(j);
  auto hit = c->digests().find("/a");
  REQUIRE(hit);
  CHECK(hit->contains(Bytes(20, 0xaa)));
  CHECK_FALSE(hit->contains(Bytes(20, 0xbb)));  // upstream compares lowercase hex strings
  CHECK(hit->as_strings() == std::vector<std::string>{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                                      "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "sha256:cccc"});
  CHECK_FALSE(c->digests().find("/b"));
  CHECK(c->log_hash_alg() == crypto::HashAlg::sha256);
  CHECK(c->keyring_ignored(".builtin"));
  CHECK_FALSE(c->keyring_ignored(".ima"));
  REQUIRE(c->verification_keys());
  CHECK(c->verification_keys()->size() == 2);
  j["ima"]["log_hash_alg"] = "bogus";
  CHECK(CompiledPolicy::compile(j)->log_hash_alg() == crypto::HashAlg::sha1);
  // the JSON path and the model path build the same tables
  auto via_model = CompiledPolicy::compile(runtime_policy_from_json(j));
  REQUIRE(via_model->digests().find("/a"));
  CHECK(via_model->digests().find("/a")->as_strings() == hit->as_strings());
  CHECK(via_model->digests().size() == c->digests().size());
  auto wrong = j;
  wrong["digests"]["/a"] = {1};
  CHECK_THROWS_AS(CompiledPolicy::compile(wrong), ParseError);
  wrong["digests"] = nlohmann::json::array();
  CHECK_THROWS_AS(CompiledPolicy::compile(wrong), ParseError);
  j["excludes"] = {"("};
  CHECK_THROWS_AS(CompiledPolicy::compile(j), std::invalid_argument);
  // a short-path table survives moves (keys are views into the arena)
  DigestMap m{{"x", {"0123"}}};
  DigestTable t1(m);
  DigestTable t2(std::move(t1));
  REQUIRE(t2.find("x"));
  CHECK(t2.find("x")->contains(Bytes{0x01, 0x23}));
}

TEST_CASE("legacy allowlists and exclude lists convert as upstream", "[policy][legacy]") {
  for (std::string alg : {"sha1", "sha256", "sha384", "sha512", "sm3_256", "unknown"}) {
    INFO(alg);
    const auto text = slurp("create-runtime-policy/allowlist-" + alg);
    auto p = convert_legacy_allowlist(text, "2024-01-01 00:00:00.000000");
    CHECK(p.meta.generator == 3);
    CHECK(p.meta.timestamp == std::optional<std::string>("2024-01-01 00:00:00.000000"));
    REQUIRE(p.digests.count("data") == 1);
    CHECK(p.digests["data"].at(0) == text.substr(0, text.find_first_of(" \t")));
  }
  auto short_list = convert_flat_allowlist(slurp("legacy/ima-allowlist-short.txt"), "t");
  CHECK(short_list.digests.at("boot_aggregate") ==
        std::vector<std::string>{"sha256:4309217e9709def327c3409407f4d52907aeba46ef1b4f46529fd095f2ef9fb2"});
  CHECK(short_list.digests.count("/boot/grub2/i386-pc/terminfo.mod") == 1);

  auto flat = convert_flat_allowlist("aa  /x\nbb /x\n\ncc %keyring:.ima\nonlyonefield\n", "t");
  CHECK(flat.digests.at("/x") == std::vector<std::string>{"aa", "bb"});
  CHECK(flat.keyrings.at(".ima") == std::vector<std::string>{"cc"});
  CHECK(flat.digests.size() == 1);

  auto js = convert_legacy_allowlist(R"({"hashes": {"/y": ["dd"]}, "excludes": ["/tmp"], "meta": {"version": 0}})", "t");
  CHECK(js.digests.at("/y") == std::vector<std::string>{"dd"});
  CHECK(js.excludes == std::vector<std::string>{"/tmp"});
  CHECK(js.meta.generator == 3);
  CHECK_THROWS_AS(convert_legacy_allowlist(R"({"digests": {"/y": ["dd"]}})", "t"), ParseError);
  CHECK_THROWS_AS(convert_legacy_allowlist(slurp("legacy/test-data/allowlist.json"), "t"), ParseError);

  RuntimePolicy e = empty_runtime_policy();
  append_exclude_list("# comment\n\n  /tmp/.*  \n/var/log\n", e);
  CHECK(e.excludes == std::vector<std::string>{"/tmp/.*", "/var/log"});

  auto up = upgrade_runtime_policy(nlohmann::json::parse(R"({"meta": {"version": 0}, "digests": {"/z": ["ee"]}})"), "t");
  CHECK(up.meta.generator == 2);
  CHECK(up.meta.version == 1);
  CHECK(up.digests.at("/z") == std::vector<std::string>{"ee"});
  auto same = upgrade_runtime_policy(load_json("create-runtime-policy/policy-sha1"), "t");
  CHECK(same.meta.generator == 3);
  CHECK(python_now_timestamp().size() == 26);
}
