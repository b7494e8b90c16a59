// Real keylime_verifier and keylime_registrar processes, a software-TPM agent registered at the registrar and
// served over mTLS, tenant requests over mTLS with cv_ca/client-cert.crt, a real SQLite file.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent_server.hpp"
#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "support/swtpm.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/http/client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "integration/verifier/deployment.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

using kl::itest::add_body;
using kl::itest::attestation_count;
using kl::itest::binary;
using kl::itest::Deployment;
using kl::itest::eventually;

TEST_CASE("verifier process: tenant add -> attesting - restart resumes - malformed and unregistered agents refused") {
  Deployment d;
  kl::testing::SoftwareAgent identity;
  kl::testing::AgentServerOptions ao;
  ao.uuid = "proc-agent-1";
  ao.trusted_client_ca_file = (d.cv_ca() / "cacert.crt").string();
  kl::testing::AgentServer agent(ao, identity);
  agent.start();

  kl::http::Client reg("127.0.0.1", d.rport);
  kl::testing::RegisterOptions ro;
  ro.agent_id = ao.uuid;
  ro.contact_port = agent.port();
  ro.mtls_cert = agent.mtls_cert_pem();
  const auto outcome = kl::testing::register_and_activate(reg, identity, ro);
  INFO(kl::testing::to_json(outcome).dump() << "\n" << d.registrar->log());
  REQUIRE(outcome.ok());

  auto tenant = d.tenant();
  auto r = tenant.request("GET", "/version");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["results"]["current_version"] == "2.6");

  // Malformed requests: 4xx JSON, nothing stored.
  json bad = add_body(identity, agent.port(), agent.mtls_cert_pem());
  bad.erase("accept_tpm_hash_algs");
  r = tenant.request("POST", "/v2.6/agents/" + ao.uuid, bad.dump());
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["status"] == "Exception error: 'accept_tpm_hash_algs'");
  r = tenant.request("POST", "/v2.6/agents/" + ao.uuid, "{\"v\": ");
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["code"] == 400);
  r = tenant.request("GET", "/v2.6/agents");
  CHECK(json::parse(r.body)["results"]["uuids"] == json::array());

  // Not registered at the registrar: refused.
  kl::testing::SoftwareAgent stranger;
  r = tenant.request("POST", "/v2.6/agents/stranger-1", add_body(stranger, 1, agent.mtls_cert_pem()).dump());
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["status"].get<std::string>().find("not registered and active at the registrar") !=
        std::string::npos);

  // The real thing.
  r = tenant.request("POST", "/v2.6/agents/" + ao.uuid, add_body(identity, agent.port(), agent.mtls_cert_pem()).dump());
  INFO(r.body << "\n" << d.verifier->log());
  REQUIRE(r.status == 200);
  REQUIRE(eventually([&] { return attestation_count(tenant, ao.uuid) >= 3; }));
  CHECK(agent.api().v_key() == kl::Bytes(32, 3));

  // Restart: the agent resumes from the database.
  d.verifier->terminate();
  d.start_verifier();
  auto tenant2 = d.tenant();
  const long long after_restart = attestation_count(tenant2, ao.uuid);
  REQUIRE(after_restart >= 3);
  REQUIRE(eventually([&] { return attestation_count(tenant2, ao.uuid) >= after_restart + 2; }, 10s));

  // Delete: polling stops.
  r = tenant2.request("DELETE", "/v2.6/agents/" + ao.uuid);
  CHECK((r.status == 200 || r.status == 202));
  REQUIRE(eventually([&] { return tenant2.request("GET", "/v2.6/agents/" + ao.uuid).status == 404; }));
  const auto served = agent.api().quotes_served();
  std::this_thread::sleep_for(1s);
  CHECK(agent.api().quotes_served() == served);
}

TEST_CASE("verifier process: configuration errors exit non-zero naming the key - zeromq is refused") {
  kl::testing::TempDir dir;
  auto run = [&](const std::string& conf) {
    std::ofstream(dir.path() / "v.conf") << conf;
    return kl::testing::run_command({binary("keylime_verifier").string(), "-c", (dir.path() / "v.conf").string()},
                                    {{"KEYLIME_DIR", dir.path().string()}});
  };
  auto r = run("[verifier]\nquote_interval = often\n");
  CHECK(r.status != 0);
  CHECK(r.output.find("[verifier] quote_interval") != std::string::npos);
  r = run("[revocations]\nenabled_revocation_notifications = [\"zeromq\"]\n");
  CHECK(r.status != 0);
  CHECK(r.output.find("zeromq") != std::string::npos);
  CHECK(r.output.find("not support") != std::string::npos);
  r = kl::testing::run_command({binary("keylime_verifier").string(), "--help"});
  CHECK(r.status == 0);
  CHECK(r.output.find("Usage: keylime_verifier") != std::string::npos);
}

TEST_CASE("verifier process: a swtpm-backed agent attests - a PCR outside tpm_policy gives invalid_pcr_15") {
  REQUIRE(kl::testing::Swtpm::available());
  Deployment d;
  kl::testing::Swtpm swtpm;
  kl::testing::TpmAgent tpm(swtpm.tcti());
  kl::testing::AgentServerOptions ao;
  ao.uuid = "swtpm-agent-1";
  ao.trusted_client_ca_file = (d.cv_ca() / "cacert.crt").string();
  kl::testing::AgentServer agent(ao, tpm);
  agent.start();

  kl::http::Client reg("127.0.0.1", d.rport);
  kl::testing::RegisterOptions ro;
  ro.agent_id = ao.uuid;
  ro.contact_port = agent.port();
  ro.mtls_cert = agent.mtls_cert_pem();
  const auto outcome = kl::testing::register_and_activate(reg, tpm, ro);
  INFO(kl::testing::to_json(outcome).dump());
  REQUIRE(outcome.ok());

  auto tenant = d.tenant();
  auto r = tenant.request("POST", "/v2.6/agents/" + ao.uuid, add_body(tpm, agent.port(), agent.mtls_cert_pem()).dump());
  INFO(r.body << "\n" << d.verifier->log());
  REQUIRE(r.status == 200);
  REQUIRE(eventually([&] { return attestation_count(tenant, ao.uuid) >= 2; }, 30s));
  json s = json::parse(tenant.request("GET", "/v2.6/agents/" + ao.uuid).body)["results"];
  CHECK(s["sign_alg"] == "rsassa");
  CHECK(s["hash_alg"] == "sha256");
  CHECK(s["operational_state"] == 3);

  agent.pcr_extend(15, kl::Bytes(32, 0xab));
  REQUIRE(eventually([&] {
    return json::parse(tenant.request("GET", "/v2.6/agents/" + ao.uuid).body)["results"]["operational_state"] == 9;
  }, 30s));
  s = json::parse(tenant.request("GET", "/v2.6/agents/" + ao.uuid).body)["results"];
  CHECK(s["last_event_id"] == "pcr_validation.invalid_pcr_15");
  CHECK(s["attestation_status"] == "FAIL");
}
