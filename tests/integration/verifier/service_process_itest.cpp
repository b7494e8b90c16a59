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

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kZero(64, '0');

template <class F>
bool eventually(F&& pred, std::chrono::milliseconds timeout = 20s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

std::filesystem::path binary(const std::string& name) { return std::filesystem::path(KL_BINARY_DIR) / name; }

struct Deployment {
  kl::testing::TempDir dir;
  std::uint16_t vport = kl::testing::free_tcp_port();
  std::uint16_t rport = kl::testing::free_tcp_port();
  std::uint16_t rtls = kl::testing::free_tcp_port();
  std::unique_ptr<kl::testing::ChildProcess> verifier, registrar;

  std::filesystem::path kl_dir() const { return dir.path() / "kl"; }
  std::filesystem::path cv_ca() const { return kl_dir() / "cv_ca"; }
  std::map<std::string, std::string> env() const {
    return {{"KEYLIME_DIR", kl_dir().string()}, {"KEYLIME_TENANT_CONFIG", (dir.path() / "tenant.conf").string()}};
  }

  Deployment() {
    std::filesystem::create_directories(kl_dir());
    std::filesystem::create_directories(dir.path() / "tpm_cert_store");
    std::ofstream(dir.path() / "verifier.conf")
        << "[verifier]\nip = 127.0.0.1\nport = " << vport << "\nregistrar_port = " << rtls
        << "\nquote_interval = 0.3\nretry_interval = 0.2\nmax_retries = 2\nexponential_backoff = False\n"
           "request_timeout = 3\n";
    std::ofstream(dir.path() / "registrar.conf") << "[registrar]\nip = 127.0.0.1\nport = " << rport
                                                 << "\ntls_port = " << rtls << "\nek_cert_chain_check = off\n";
    std::ofstream(dir.path() / "tenant.conf") << "[tenant]\ntpm_cert_store = " << (dir.path() / "tpm_cert_store").string() << "\n";
    start_verifier();   // generates cv_ca, which the registrar (tls_dir = default) then uses
    registrar = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_registrar").string(), "-c", (dir.path() / "registrar.conf").string()},
        env(), dir.path() / "registrar.log");
    if (!kl::testing::wait_for_port(rtls, 20s)) throw std::runtime_error("registrar did not start:\n" + registrar->log());
  }

  void start_verifier() {
    verifier = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_verifier").string(), "-c", (dir.path() / "verifier.conf").string()},
        env(), dir.path() / "verifier.log");
    if (!kl::testing::wait_for_port(vport, 20s)) throw std::runtime_error("verifier did not start:\n" + verifier->log());
  }

  kl::http::Client tenant() const {
    kl::http::TlsClientConfig t;
    t.cert_file = (cv_ca() / "client-cert.crt").string();
    t.key_file = (cv_ca() / "client-private.pem").string();
    t.ca_files = {(cv_ca() / "cacert.crt").string()};
    return kl::http::Client("127.0.0.1", vport, kl::http::ClientOptions{t, 10000ms});
  }
};

json add_body(const kl::testing::AgentIdentity& id, std::uint16_t port, const std::string& mtls_cert) {
  return json{{"v", kl::base64_encode(kl::Bytes(32, 3))},
              {"cloudagent_ip", "127.0.0.1"},
              {"cloudagent_port", port},
              {"verifier_ip", "127.0.0.1"},
              {"verifier_port", 8881},
              {"tpm_policy", "{\"15\": [\"" + kZero + "\"], \"mask\": \"0x8000\"}"},
              {"runtime_policy", ""},
              {"runtime_policy_name", nullptr},
              {"runtime_policy_key", nullptr},
              {"mb_policy", nullptr},
              {"mb_policy_name", nullptr},
              {"ima_sign_verification_keys", ""},
              {"metadata", "{}"},
              {"revocation_key", ""},
              {"accept_tpm_hash_algs", {"sha256"}},
              {"accept_tpm_encryption_algs", {"ecc", "rsa"}},
              {"accept_tpm_signing_algs", {"rsassa", "ecdsa"}},
              {"ak_tpm", kl::base64_encode(id.ak_tpm2b_public())},
              {"mtls_cert", mtls_cert},
              {"supported_version", "2.6"}};
}

long long attestation_count(kl::http::Client& c, const std::string& id) {
  const auto r = c.request("GET", "/v2.6/agents/" + id);
  if (r.status != 200) return -1;
  return json::parse(r.body)["results"]["attestation_count"].get<long long>();
}

}  // namespace

TEST_CASE("verifier process: tenant add -> attesting; restart resumes; malformed and unregistered agents refused") {
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

TEST_CASE("verifier process: configuration errors exit non-zero naming the key; zeromq is refused") {
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

TEST_CASE("verifier process: a swtpm-backed agent attests; a PCR outside tpm_policy gives invalid_pcr_15") {
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
