// The tenant API through VerifierService::handle() with a real SQLite store (no sockets, no poller).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/config/config.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "support/temp_dir.hpp"
#include "verifier/verifier_config.hpp"
#include "verifier/verifier_service.hpp"

using nlohmann::json;

namespace {

struct Fixture {
  kl::testing::TempDir dir;
  kl::verifier::VerifierSettings settings;
  std::unique_ptr<kl::storage::VerifierStore> store;
  kl::testing::SoftwareAgent agent;
  kl::verifier::RegistrarLookupFn registrar;
  std::unique_ptr<kl::verifier::VerifierService> service;

  explicit Fixture(const std::string& ini = "") {
    std::map<std::string, std::string> env{{"KEYLIME_DIR", dir.path().string()}};
    settings = kl::verifier::load_settings(kl::config::Config::from_string("verifier", ini, env), env);
    store = kl::storage::open_verifier_store("sqlite", dir.path());
    rebuild();
  }
  void rebuild() {
    service = std::make_unique<kl::verifier::VerifierService>(settings, *store, nullptr, registrar,
                                                              kl::log::make_logger("verifier-test", {{"KEYLIME_LOG_LEVEL", "ERROR"}}));
  }

  kl::http::Response call(const std::string& method, const std::string& target, const std::string& body = "",
                          bool admin = true) {
    kl::http::Request r;
    r.method = method;
    r.target = target;
    const auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = body;
    r.tls = true;
    if (admin) r.peer = kl::http::PeerCertificate{true, "tenant", ""};
    return service->handle(r);
  }

  json add_body() const {
    return json{{"v", kl::base64_encode(kl::Bytes(32, 7))},
                {"cloudagent_ip", "127.0.0.1"},
                {"cloudagent_port", 9002},
                {"verifier_ip", "127.0.0.1"},
                {"verifier_port", 8881},
                {"tpm_policy", "{\"15\": [\"0000000000000000000000000000000000000000000000000000000000000000\"], \"mask\": \"0x8000\"}"},
                {"runtime_policy", ""},
                {"runtime_policy_name", nullptr},
                {"runtime_policy_key", nullptr},
                {"mb_policy", nullptr},
                {"mb_policy_name", nullptr},
                {"ima_sign_verification_keys", ""},
                {"metadata", "{}"},
                {"revocation_key", ""},
                {"accept_tpm_hash_algs", {"sha512", "sha384", "sha256"}},
                {"accept_tpm_encryption_algs", {"ecc", "rsa"}},
                {"accept_tpm_signing_algs", {"ecschnorr", "rsassa", "ecdsa"}},
                {"ak_tpm", kl::base64_encode(agent.ak_tpm2b_public())},
                {"mtls_cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
                {"supported_version", "2.1"}};
  }
};

json results(const kl::http::Response& r) { return json::parse(r.body).at("results"); }
std::string status_text(const kl::http::Response& r) { return json::parse(r.body).at("status").get<std::string>(); }

const std::string kId = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";

}  // namespace

TEST_CASE("tenant API: add, show, list, bulk, delete") {
  Fixture f;
  auto r = f.call("POST", "/v2.1/agents/" + kId, f.add_body().dump());
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body) == json::parse(R"({"code":200,"status":"Success","results":{}})"));

  r = f.call("GET", "/v2.1/agents/" + kId);
  REQUIRE(r.status == 200);
  const json s = results(r);
  CHECK(s["operational_state"] == 1);
  CHECK(s["attestation_status"] == "PENDING");
  CHECK(s["ip"] == "127.0.0.1");
  CHECK(s["port"] == 9002);
  CHECK(s["tpm_policy"].get<std::string>().find("\"mask\": \"0x8000\"") != std::string::npos);
  CHECK(s["meta_data"] == "{}");
  CHECK(s["accept_tpm_encryption_algs"] == json({"ecc", "rsa"}));
  CHECK(s["has_runtime_policy"] == 0);
  CHECK(s["has_mb_refstate"] == 0);
  CHECK(s["verifier_id"] == "default");
  CHECK(s["severity_level"].is_null());
  CHECK(s["last_event_id"].is_null());
  CHECK(s["attestation_count"] == 0);
  CHECK(s["attestation_period"] == "2s");
  CHECK(s["maximum_attestation_interval"] == "10s");
  CHECK(s.contains("last_received_quote"));
  CHECK(s.contains("last_successful_attestation"));

  r = f.call("GET", "/v2/agents");
  CHECK(results(r) == json::parse(R"({"uuids": [["d432fbb3-d2f1-4a97-9ef7-75bd81c00000"]]})"));
  CHECK(results(f.call("GET", "/v2/agents?verifier=other")) == json::parse(R"({"uuids": []})"));
  // keylime_tenant -c cvlist always sends an empty "?verifier=": no filter then, as upstream.
  CHECK(results(f.call("GET", "/v2.6/agents/?verifier=")) ==
        json::parse(R"({"uuids": [["d432fbb3-d2f1-4a97-9ef7-75bd81c00000"]]})"));
  r = f.call("GET", "/v2.6/agents?bulk=true&verifier=default");
  REQUIRE(results(r).contains(kId));
  CHECK(results(r)[kId]["operational_state"] == 1);

  r = f.call("POST", "/v2.1/agents/" + kId, f.add_body().dump());
  CHECK(r.status == 409);
  CHECK(status_text(r) == "Agent of uuid " + kId + " already exists. Please use delete or update.");

  r = f.call("PUT", "/v2.1/agents/" + kId + "/stop");
  CHECK(r.status == 200);
  CHECK(results(f.call("GET", "/v2.1/agents/" + kId))["operational_state"] == 10);
  CHECK(results(f.call("GET", "/v2.1/agents/" + kId))["attestation_status"] == "FAIL");
  r = f.call("PUT", "/v2.1/agents/" + kId + "/reactivate");
  CHECK(r.status == 200);
  CHECK(results(f.call("GET", "/v2.1/agents/" + kId))["operational_state"] == 1);
  r = f.call("PUT", "/v2.1/agents/" + kId + "/frobnicate");
  CHECK(r.status == 400);
  CHECK(status_text(r) == "uri not supported");
  r = f.call("PUT", "/v2.1/agents/nobody/stop");
  CHECK(r.status == 400);
  CHECK(status_text(r).rfind("Exception error:", 0) == 0);

  r = f.call("DELETE", "/v2.1/agents/" + kId);
  CHECK(r.status == 200);
  r = f.call("GET", "/v2.1/agents/" + kId);
  CHECK(r.status == 404);
  CHECK(status_text(r) == "agent id not found");
  CHECK(f.call("DELETE", "/v2.1/agents/" + kId).status == 404);
  // The default runtime / mb policies named after the agent went with it.
  CHECK(f.store->list_runtime_policy_names().empty());
}

TEST_CASE("tenant API: malformed add requests get 4xx JSON and store nothing") {
  Fixture f;
  auto expect_rejected = [&](const std::string& body, int code, const std::string& status, const std::string& id = kId) {
    const auto r = f.call("POST", "/v2.1/agents/" + id, body);
    INFO(body);
    CHECK(r.status == code);
    CHECK(r.content_type == "application/json");
    CHECK(status_text(r) == status);
    CHECK(f.store->list_agent_ids(std::nullopt).empty());
    CHECK(f.store->list_runtime_policy_names().empty());
    CHECK(f.store->list_mb_policy_names().empty());
  };
  json b = f.add_body();
  b.erase("tpm_policy");
  expect_rejected(b.dump(), 400, "Exception error: 'tpm_policy'");
  b = f.add_body();
  b.erase("mb_policy_name");
  expect_rejected(b.dump(), 400, "Exception error: 'mb_policy_name'");
  b = f.add_body();
  b["mtls_cert"] = nullptr;
  expect_rejected(b.dump(), 400, "mTLS certificate for agent is required!");
  b["mtls_cert"] = "disabled";
  expect_rejected(b.dump(), 400, "mTLS certificate for agent is required!");
  expect_rejected("", 400, "Expected non zero content length");
}

TEST_CASE("tenant API: more malformed add requests") {
  Fixture f;
  auto rejected = [&](const std::string& body, const std::string& id = kId) {
    const auto r = f.call("POST", "/v2.1/agents/" + id, body);
    INFO(body << " -> " << r.status << " " << r.body);
    CHECK(r.status >= 400);
    CHECK(r.status < 500);
    CHECK(json::parse(r.body).at("code") == r.status);
    CHECK(f.store->list_agent_ids(std::nullopt).empty());
  };
  rejected("[1,2,3]");
  rejected("{\"a\":1,\"a\":2}");   // duplicate keys
  rejected(std::string("\xff\xfe garbage", 11));
  json b = f.add_body();
  b["ak_tpm"] = "AAAA";
  rejected(b.dump());
  b = f.add_body();
  b["ak_tpm"] = "not base64!";
  rejected(b.dump());
  b = f.add_body();
  b["tpm_policy"] = "{\"x\": 1}";
  rejected(b.dump());
  b = f.add_body();
  b["cloudagent_port"] = "99999";
  rejected(b.dump());
  b = f.add_body();
  b["accept_tpm_hash_algs"] = "sha256";
  rejected(b.dump());
  b = f.add_body();
  b["runtime_policy"] = nullptr;
  rejected(b.dump());
  b = f.add_body();
  b["mb_policy"] = "{broken";
  rejected(b.dump());
  rejected(f.add_body().dump(), "bad..id");
  rejected(f.add_body().dump(), std::string(81, 'a'));
  const auto r = f.call("POST", "/v2.1/agents/bad..id", f.add_body().dump());
  CHECK(status_text(r) == "agent_id not not valid");
}

TEST_CASE("tenant API: policy-name rules on add") {
  Fixture f;
  json b = f.add_body();
  b["runtime_policy_name"] = "missing";
  auto r = f.call("POST", "/v2.1/agents/" + kId, b.dump());
  CHECK(r.status == 404);
  CHECK(status_text(r) == "Could not find IMA policy with name missing!");

  b = f.add_body();
  b["mb_policy_name"] = "nomb";
  r = f.call("POST", "/v2.1/agents/" + kId, b.dump());
  CHECK(r.status == 404);
  CHECK(status_text(r) == "Could not find mb_policy with name nomb!");

  REQUIRE(f.call("POST", "/v2/mbpolicies/mb1", json{{"mb_policy", "{}"}}.dump()).status == 201);
  b = f.add_body();
  b["mb_policy_name"] = "mb1";
  b["mb_policy"] = "{\"a\": 1}";
  r = f.call("POST", "/v2.1/agents/" + kId, b.dump());
  CHECK(r.status == 409);
  CHECK(status_text(r) ==
        "mb_policy with name mb1 already exists. Please use a different name or delete the mb_policy from the verifier.");
  CHECK(f.store->list_agent_ids(std::nullopt).empty());

  b["mb_policy"] = nullptr;   // name only: attach the stored one
  r = f.call("POST", "/v2.1/agents/" + kId, b.dump());
  REQUIRE(r.status == 200);
  CHECK(results(f.call("GET", "/v2.1/agents/" + kId))["has_mb_refstate"] == 1);
  // Still referenced: cannot be deleted.
  CHECK(f.call("DELETE", "/v2/mbpolicies/mb1").status == 409);
}

TEST_CASE("tenant API: runtime and measured-boot policy storage") {
  Fixture f;
  const std::string policy = R"({"meta": {"version": 1, "generator": 3}, "release": 0, "digests": {}, "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {}, "verification-keys": ""})";
  auto r = f.call("POST", "/v2/allowlists/p1", json{{"runtime_policy", kl::base64_encode(kl::as_bytes(policy))},
                                                    {"runtime_policy_key", nullptr}, {"tpm_policy", nullptr}}.dump());
  INFO(r.body);
  REQUIRE(r.status == 201);
  CHECK(status_text(r) == "Created");
  CHECK(results(f.call("GET", "/v2/allowlists")) == json::parse(R"({"runtimepolicy names": ["p1"]})"));
  r = f.call("GET", "/v2/allowlists/p1");
  CHECK(results(r)["name"] == "p1");
  CHECK(results(r)["tmp_policy"].is_null());
  CHECK(results(r)["runtime_policy"] == policy);
  CHECK(f.call("POST", "/v2/allowlists/p1", json{{"runtime_policy", kl::base64_encode(kl::as_bytes(policy))}}.dump()).status == 409);
  CHECK(f.call("PUT", "/v2/allowlists/p1", json{{"runtime_policy", kl::base64_encode(kl::as_bytes(policy))}}.dump()).status == 201);
  r = f.call("POST", "/v2/allowlists/p2", json{{"runtime_policy", kl::base64_encode(kl::as_bytes("not json"))}}.dump());
  CHECK(r.status == 400);
  CHECK(status_text(r) == "Runtime policy is not valid JSON!");
  CHECK(f.call("GET", "/v2/allowlists/p2").status == 404);
  CHECK(status_text(f.call("GET", "/v2/allowlists/p2")) == "Runtime policy p2 not found");

  // An agent added with the stored policy by name reports has_runtime_policy = 1.
  json b = f.add_body();
  b["runtime_policy_name"] = "p1";
  REQUIRE(f.call("POST", "/v2.1/agents/" + kId, b.dump()).status == 200);
  CHECK(results(f.call("GET", "/v2.1/agents/" + kId))["has_runtime_policy"] == 1);
  b["runtime_policy"] = kl::base64_encode(kl::as_bytes(policy));
  r = f.call("POST", "/v2.1/agents/other-agent", b.dump());
  CHECK(r.status == 409);
  CHECK(status_text(r) ==
        "IMA policy with name p1 already exists. Please use a different name or delete the allowlist from the verifier.");

  REQUIRE(f.call("DELETE", "/v2.1/agents/" + kId).status == 200);
  CHECK(f.call("DELETE", "/v2/allowlists/p1").status == 200);
  CHECK(f.call("DELETE", "/v2/allowlists/p1").status == 404);

  r = f.call("POST", "/v2/mbpolicies/m", json{{"mb_policy", "{\"x\": 1}"}}.dump());
  CHECK(r.status == 201);
  CHECK(results(f.call("GET", "/v2/mbpolicies")) == json::parse(R"({"mbpolicy names": ["m"]})"));
  CHECK(results(f.call("GET", "/v2/mbpolicies/m"))["mb_policy"] == "{\"x\": 1}");
  CHECK(f.call("POST", "/v2/mbpolicies/bad", json{{"mb_policy", "{oops"}}.dump()).status == 400);
  CHECK(f.call("GET", "/v2/mbpolicies/bad").status == 404);
  CHECK(f.call("DELETE", "/v2/mbpolicies/m").status == 200);
  CHECK(f.call("GET", "/v2/mbpolicies/m").status == 404);
}

TEST_CASE("tenant API: framework answers, versions and authorization") {
  Fixture f;
  auto r = f.call("GET", "/version", "", false);
  REQUIRE(r.status == 200);
  CHECK(results(r)["current_version"] == "2.6");
  CHECK(results(r)["supported_versions"].size() == 9);
  CHECK(f.call("GET", "/versions", "", false).body == r.body);
  r = f.call("GET", "/", "", false);
  CHECK(r.status == 307);
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0].second == "/v3.0/");
  CHECK(f.call("GET", "/v3.0/", "", false).status == 200);
  r = f.call("GET", "/v1.5/agents");
  CHECK(r.status == 404);
  CHECK(r.body.empty());
  CHECK(f.call("PATCH", "/v2/agents/x").status == 405);
  CHECK(f.call("BREW", "/v2/agents").status == 501);

  r = f.call("GET", "/v2/agents", "", false);   // no client certificate
  CHECK(r.status == 403);
  CHECK(json::parse(r.body)["errors"][0]["title"] == "Forbidden");
  r = f.call("POST", "/v2/agents/" + kId, f.add_body().dump(), false);
  CHECK(r.status == 403);
  CHECK(f.store->list_agent_ids(std::nullopt).empty());
}

TEST_CASE("tenant API: the registrar decides whether an agent may be added") {
  Fixture f;
  kl::verifier::RegistrarLookup answer;
  f.registrar = [&](const std::string&) { return answer; };
  f.rebuild();

  answer.status = kl::verifier::RegistrarLookup::Status::not_found;
  answer.detail = "Agent with ID '" + kId + "' has not been activated";
  auto r = f.call("POST", "/v2.1/agents/" + kId, f.add_body().dump());
  CHECK(r.status == 400);
  CHECK(status_text(r).find("not registered and active at the registrar") != std::string::npos);
  CHECK(f.store->list_agent_ids(std::nullopt).empty());

  answer.status = kl::verifier::RegistrarLookup::Status::ok;
  kl::testing::SoftwareAgent other;
  answer.info.aik_tpm = kl::base64_encode(other.ak_tpm2b_public());   // a different AK
  r = f.call("POST", "/v2.1/agents/" + kId, f.add_body().dump());
  CHECK(r.status == 400);
  CHECK(f.store->list_agent_ids(std::nullopt).empty());

  answer.info.aik_tpm = kl::base64_encode(f.agent.ak_tpm2b_public());
  answer.info.mtls_cert = "-----BEGIN CERTIFICATE-----\nREGISTRAR\n-----END CERTIFICATE-----\n";
  r = f.call("POST", "/v2.1/agents/" + kId, f.add_body().dump());
  REQUIRE(r.status == 200);
  CHECK(f.store->find_agent(kId)->mtls_cert == answer.info.mtls_cert);
}

TEST_CASE("registrar reply parsing") {
  using S = kl::verifier::RegistrarLookup::Status;
  auto r = kl::verifier::parse_registrar_reply(
      200, R"({"code":200,"status":"Success","results":{"aik_tpm":"AAA=","mtls_cert":"PEM","ip":"1.2.3.4","port":9002,"regcount":1}})");
  CHECK(r.status == S::ok);
  CHECK(r.info.aik_tpm == "AAA=");
  CHECK(r.info.port == 9002);
  r = kl::verifier::parse_registrar_reply(404, R"({"code":404,"status":"Agent with ID 'x' not found","results":{}})");
  CHECK(r.status == S::not_found);
  CHECK(r.detail == "Agent with ID 'x' not found");
  CHECK(kl::verifier::parse_registrar_reply(200, "garbage").status == S::bad_reply);
  CHECK(kl::verifier::parse_registrar_reply(200, R"({"results":{}})").status == S::bad_reply);
  CHECK(kl::verifier::parse_registrar_reply(500, "").status == S::bad_reply);
}
