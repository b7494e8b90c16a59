// keylime-policy sign runtime: DSSE envelopes over validated policies, checked with the core's
// DSSE verification (the verifier's code path), for given and generated EC keys and the x509 backend.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "common/attest/ima/keyring.hpp"
#include "common/attest/policy/dsse.hpp"
#include "common/attest/policy/policy_upload.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "integration/tools/tool_test_util.hpp"

using namespace kl::tools_test;
using kl::testing::TempDir;
using nlohmann::json;
namespace dsse = kl::policy::dsse;
namespace fs = std::filesystem;

namespace {

const std::string kSrp = "sign-runtime-policy/";

dsse::Envelope envelope_of(const std::string& text) { return dsse::parse_envelope(json::parse(text)); }

}  // namespace

TEST_CASE("sign runtime with the sample EC P-521 key: envelope verifies, payload is the policy") {
  TempDir dir;
  const std::string out = (dir.path() / "signed.json").string();
  for (const std::string policy : {"runtime-policy.json", "runtime-policy-empty.json"}) {
    INFO(policy);
    auto r = run_tool({"sign", "runtime", "-r", sample(kSrp + policy), "-k", sample(kSrp + "ec-p521-private.pem"), "-o", out});
    INFO(r.output);
    REQUIRE(r.status == 0);
    const std::string text = read_text(out);
    CHECK(text.rfind("{\"payload\": \"", 0) == 0);
    CHECK(text.find("\", \"payloadType\": \"application/vnd.keylime+json\", \"signatures\": [{\"keyid\": \"") !=
          std::string::npos);
    auto env = envelope_of(text);
    CHECK(env.payload_type == "application/vnd.keylime+json");
    // The sample policies are json.dumps output already: the payload reproduces them byte for byte.
    std::string original = read_text(sample(kSrp + policy));
    while (!original.empty() && original.back() == '\n') original.pop_back();
    CHECK(kl::as_string(env.payload) == original);
    auto pub = kl::ima::load_public_key_pem(read_text(sample(kSrp + "ec-p521-public.pem")));
    REQUIRE(pub);
    CHECK(dsse::verify_with_key(env, pub.get()));
    REQUIRE(env.signatures.size() == 1);
    CHECK(env.signatures[0].keyid == dsse::keyid_of(pub.get()));
    // Another key does not verify it.
    auto other = kl::ima::load_public_key_pem(read_text(sample("runtime-policy/runtime-policy-pubkey.pub")));
    CHECK_FALSE(dsse::verify_with_key(env, other.get()));
  }
}

TEST_CASE("sign runtime without a key generates a P-256 key (0600) that verifies the envelope") {
  TempDir dir;
  const std::string key = (dir.path() / "new-key.pem").string();
  const std::string out = (dir.path() / "signed.json").string();
  auto r = run_tool({"sign", "runtime", "-r", sample(kSrp + "runtime-policy.json"), "-p", key, "-o", out});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::string pem = read_text(key);
  CHECK(pem.rfind("-----BEGIN EC PRIVATE KEY-----", 0) == 0);
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto pub = kl::ima::load_public_key_pem(pem);
  REQUIRE(pub);
  CHECK(dsse::verify_with_key(envelope_of(read_text(out)), pub.get()));

  SECTION("default key file in the working directory, envelope on stdout") {
    auto s = kl::testing::run_command(
        {"sh", "-c", "cd '" + dir.path().string() + "' && exec '" + tool_path() + "' sign runtime -r '" +
                         sample(kSrp + "runtime-policy.json") + "'"});
    REQUIRE(s.status == 0);
    REQUIRE(fs::exists(dir.path() / "keylime-ecdsa-key.pem"));
    auto k = kl::ima::load_public_key_pem(read_text((dir.path() / "keylime-ecdsa-key.pem").string()));
    CHECK(dsse::verify_with_key(envelope_of(s.output), k.get()));
  }
}

TEST_CASE("sign runtime with the x509 backend embeds a certificate that verifies") {
  TempDir dir;
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string out = (dir.path() / "signed.json").string();
  auto r = run_tool({"sign", "runtime", "-b", "X509", "-r", sample(kSrp + "runtime-policy.json"), "-k",
                     sample(kSrp + "ec-p521-private.pem"), "-c", cert, "-o", out});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(read_text(cert).rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  auto env = envelope_of(read_text(out));
  CHECK(dsse::verify_with_embedded_certificates(env));
  CHECK(kl::as_string(*kl::base64_decode(env.signatures.at(0).keyid)) == read_text(cert));

  auto no_cert = run_tool({"sign", "runtime", "-b", "x509", "-r", sample(kSrp + "runtime-policy.json"), "-p",
                           (dir.path() / "k.pem").string()});
  CHECK(no_cert.status == 1);
  CHECK(no_cert.output.find("x509 backend and no certificate output file specified") != std::string::npos);
}

TEST_CASE("sign runtime: bad policies and keys exit non-zero") {
  TempDir dir;
  const std::string out = (dir.path() / "signed.json").string();
  const std::string key = sample(kSrp + "ec-p521-private.pem");
  auto expect_fail = [&](std::vector<std::string> args, const std::string& message, int status = 1) {
    args.insert(args.begin(), {"sign", "runtime"});
    args.insert(args.end(), {"-o", out});
    auto r = run_tool(args);
    INFO(r.output);
    CHECK(r.status == status);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  };
  expect_fail({"-r", sample(kSrp + "runtime-policy-bogus.json"), "-k", key}, "Unable to validate the runtime policy");
  expect_fail({"-r", "/nonexistent/policy.json", "-k", key}, "does not seem to exist");
  expect_fail({"-r", sample("ima/runtime-policy-test.json"), "-k", key}, "Unable to validate the runtime policy");
  expect_fail({"-r", sample(kSrp + "runtime-policy.json"), "-k", sample(kSrp + "rsa-4096-private.pem")},
              "Only elliptic curve keys are supported");
  expect_fail({"-r", sample(kSrp + "runtime-policy.json"), "-k", key, "-p", (dir.path() / "x").string()},
              "Only one of keyfile or keypath must be specified at once");
  expect_fail({"-r", sample(kSrp + "runtime-policy.json"), "-k", "/nonexistent/key.pem"}, "does not exist");
  expect_fail({"-r", sample(kSrp + "runtime-policy.json"), "-k", sample(kSrp + "runtime-policy.json")},
              "Unable to load the private key");
  expect_fail({"-r", sample(kSrp + "runtime-policy.json"), "-b", "gpg", "-k", key}, "invalid choice: 'gpg'", 2);
  expect_fail({"-k", key}, "the following arguments are required: -r/--runtime-policy", 2);
}

TEST_CASE("a created policy can be signed and the signed payload is still a valid policy") {
  TempDir dir;
  const std::string policy = (dir.path() / "policy.json").string(), out = (dir.path() / "signed.json").string();
  REQUIRE(run_tool({"create", "runtime", "-m", sample("ima/measurements.ima-sig.txt"), "-o", policy}).status == 0);
  auto r = run_tool({"sign", "runtime", "-r", policy, "-k", sample(kSrp + "ec-p521-private.pem"), "-o", out});
  REQUIRE(r.status == 0);
  auto env = envelope_of(read_text(out));
  CHECK(kl::as_string(env.payload) == read_text(policy));
  CHECK_FALSE(kl::policy::schema_error(json::parse(kl::as_string(env.payload))).has_value());

  // The verifier's upload check with signatures required accepts it with the signer's public key.
  kl::policy::UploadOptions opt;
  opt.require_signatures = true;
  opt.key_pem = read_text(sample(kSrp + "ec-p521-public.pem"));
  const std::string signed_text = read_text(out);
  auto accepted = kl::policy::accept_runtime_policy(signed_text, opt);
  REQUIRE(std::holds_alternative<kl::policy::AcceptedPolicy>(accepted));
  CHECK(std::get<kl::policy::AcceptedPolicy>(accepted).policy.digests.size() == 3);
  // A policy swapped under the signature is refused.
  json tampered = json::parse(signed_text);
  std::string other = read_text(sample(kSrp + "runtime-policy-empty.json"));
  tampered["payload"] = kl::base64_encode(kl::as_bytes(other));
  auto refused = kl::policy::accept_runtime_policy(tampered.dump(), opt);
  REQUIRE(std::holds_alternative<kl::policy::PolicyUploadError>(refused));
  CHECK(std::get<kl::policy::PolicyUploadError>(refused).code == 401);
}
