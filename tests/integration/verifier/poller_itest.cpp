// The poller against test agents over real mTLS sockets (AgentServer with a software TPM), a real SQLite file,
// the tenant API called through VerifierService. The verifier's client certificate comes from a generated cv_ca.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "agent/agent_server.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "support/temp_dir.hpp"
#include "verifier/poller.hpp"
#include "verifier/verifier_service.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kZero(64, '0');

template <class F>
bool eventually(F&& pred, std::chrono::milliseconds timeout = 15s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

std::pair<std::string, std::string> rsa_keypair_pem() {
  kl::ossl::Pkey key(EVP_RSA_gen(2048));
  auto dump = [](auto write) {
    kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
    write(bio.get());
    char* d = nullptr;
    return std::string(d, static_cast<size_t>(BIO_get_mem_data(bio.get(), &d)));
  };
  const std::string priv = dump([&](BIO* b) { PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  const std::string pub = dump([&](BIO* b) { PEM_write_bio_PUBKEY(b, key.get()); });
  return {priv, pub};
}

// A verifier core (store + loop + client + poller + tenant API) in this process.
struct Verifier {
  kl::verifier::VerifierSettings settings;
  std::unique_ptr<kl::storage::VerifierStore> store;
  std::unique_ptr<kl::loop::EventLoop> loop;
  std::unique_ptr<kl::loop::WorkerPool> workers;
  std::unique_ptr<kl::http::AsyncClient> client;
  std::unique_ptr<kl::verifier::Poller> poller;
  std::unique_ptr<kl::verifier::VerifierService> service;

  Verifier(const std::filesystem::path& keylime_dir, const std::string& extra_ini = "") {
    std::map<std::string, std::string> env{{"KEYLIME_DIR", keylime_dir.string()}};
    const std::string ini = "[verifier]\nquote_interval = 0.2\nretry_interval = 0.1\nmax_retries = 2\n"
                            "exponential_backoff = False\nrequest_timeout = 3\n" + extra_ini;
    settings = kl::verifier::load_settings(kl::config::Config::from_string("verifier", ini, env), env);
    kl::tls::TlsDirRequest t;
    t.dir = settings.tls_dir;
    t.generate = true;
    t.server_ip = "127.0.0.1";
    kl::tls::ensure_tls_dir(t);
    store = kl::storage::open_verifier_store("sqlite", keylime_dir);
    loop = std::make_unique<kl::loop::EventLoop>(1);
    workers = std::make_unique<kl::loop::WorkerPool>(2);
    kl::http::AsyncClientOptions o;
    o.client_cert_file = settings.client_cert.string();
    o.client_key_file = settings.client_key.string();
    o.ca_files = {settings.trusted_server_ca.at(0).string()};
    client = std::make_unique<kl::http::AsyncClient>(*loop, o);
    auto log = kl::log::make_logger("verifier-itest", {{"KEYLIME_LOG_LEVEL", "WARNING"}});
    poller = std::make_unique<kl::verifier::Poller>(settings, *store, *loop, *client, *workers, log);
    service = std::make_unique<kl::verifier::VerifierService>(settings, *store, poller.get(), nullptr, log);
  }
  ~Verifier() {
    poller->shutdown();
    loop->stop();
    workers.reset();
    client.reset();
  }

  kl::http::Response call(const std::string& method, const std::string& path, const std::string& body = "") {
    kl::http::Request r;
    r.method = method;
    r.target = path;
    r.path = path;
    r.body = body;
    r.tls = true;
    r.peer = kl::http::PeerCertificate{true, "tenant", ""};
    return service->handle(r);
  }
  json show(const std::string& id) {
    const auto r = call("GET", "/v2.1/agents/" + id);
    if (r.status != 200) return nullptr;
    return json::parse(r.body)["results"];
  }
  std::string cacert() const { return settings.trusted_client_ca.at(0).string(); }
};

struct TestAgent {
  kl::testing::SoftwareAgent identity;
  std::unique_ptr<kl::testing::AgentServer> server;
  TestAgent(const std::string& uuid, const std::string& cacert) {
    kl::testing::AgentServerOptions o;
    o.uuid = uuid;
    o.trusted_client_ca_file = cacert;
    server = std::make_unique<kl::testing::AgentServer>(o, identity);
    server->start();
  }
  json add_body(const std::string& v_b64, const std::string& revocation_key = "") const {
    return json{{"v", v_b64},
                {"cloudagent_ip", "127.0.0.1"},
                {"cloudagent_port", server->port()},
                {"tpm_policy", "{\"15\": [\"" + kZero + "\"], \"mask\": \"0x8000\"}"},
                {"runtime_policy", ""},
                {"runtime_policy_name", nullptr},
                {"runtime_policy_key", nullptr},
                {"mb_policy", nullptr},
                {"mb_policy_name", nullptr},
                {"ima_sign_verification_keys", ""},
                {"metadata", "{}"},
                {"revocation_key", revocation_key},
                {"accept_tpm_hash_algs", {"sha512", "sha384", "sha256"}},
                {"accept_tpm_encryption_algs", {"ecc", "rsa"}},
                {"accept_tpm_signing_algs", {"ecschnorr", "rsassa", "ecdsa"}},
                {"ak_tpm", kl::base64_encode(identity.ak_tpm2b_public())},
                {"mtls_cert", server->mtls_cert_pem()},
                {"supported_version", "2.6"}};
  }
};

long long count_of(Verifier& v, const std::string& id) {
  const json s = v.show(id);
  return s.is_null() ? -1 : s["attestation_count"].get<long long>();
}

}  // namespace

TEST_CASE("poller: add -> attesting over mTLS, V delivered, PCR change -> invalid_pcr_15 and revocation") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-a", v.cacert());
  TestAgent b("agent-b", v.cacert());
  const kl::Bytes V(32, 0x5a);
  const auto [priv, pub] = rsa_keypair_pem();

  REQUIRE(v.call("POST", "/v2.6/agents/agent-a", a.add_body(kl::base64_encode(V), priv).dump()).status == 200);
  REQUIRE(v.call("POST", "/v2.6/agents/agent-b", b.add_body(kl::base64_encode(V)).dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-a") >= 3 && count_of(v, "agent-b") >= 1; }));
  json s = v.show("agent-a");
  CHECK(s["operational_state"] == 3);
  CHECK(s["attestation_status"] == "PASS");
  CHECK(s["hash_alg"] == "sha256");
  CHECK(s["sign_alg"] == "ecdsa");
  CHECK(s["last_successful_attestation"].get<long long>() > 0);
  REQUIRE(a.server->api().v_key());
  CHECK(*a.server->api().v_key() == V);
  // Committed to the database, not just in memory.
  CHECK(v.store->find_agent("agent-a")->attestation_count.value_or(0) >= 3);

  a.server->pcr_extend(15, kl::Bytes(32, 1));
  REQUIRE(eventually([&] { return v.show("agent-a")["operational_state"] == 9; }));
  s = v.show("agent-a");
  CHECK(s["last_event_id"] == "pcr_validation.invalid_pcr_15");
  CHECK(s["severity_level"] == 6);
  CHECK(s["attestation_status"] == "FAIL");
  // The other agent was told, with a message signed by agent-a's revocation key.
  REQUIRE(eventually([&] { return !b.server->api().revocations().empty(); }));
  const json note = b.server->api().revocations().at(0);
  const json msg = json::parse(note["msg"].get<std::string>());
  CHECK(msg["type"] == "revocation");
  CHECK(msg["agent_id"] == "agent-a");
  CHECK(msg["event_id"] == "pcr_validation.invalid_pcr_15");
  CHECK_FALSE(note["signature"].get<std::string>().empty());
  // Polling stopped (emergency = highest label): the count no longer moves.
  const auto served = a.server->api().quotes_served();
  std::this_thread::sleep_for(800ms);
  CHECK(a.server->api().quotes_served() == served);
  CHECK(count_of(v, "agent-b") >= 1);
}

TEST_CASE("poller: wrong nonce, tampered quote, swapped AK -> qoute_validation.quote_validation") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-n", v.cacert());
  kl::testing::AgentHooks h;
  SECTION("wrong nonce") { h.quote_nonce = "ZZZZZZZZZZZZZZZZZZZZ"; }
  SECTION("tampered quote") { h.tamper_quote = true; }
  SECTION("swapped AK") { h.swap_ak = true; }
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-n", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return v.show("agent-n")["operational_state"] == 9; }));
  CHECK(v.show("agent-n")["last_event_id"] == "qoute_validation.quote_validation");
  CHECK(v.show("agent-n")["attestation_count"] == 0);
}

TEST_CASE("poller: agent down -> retries then FAILED; back + reactivate -> attesting; delete stops polling") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-d", v.cacert());
  REQUIRE(v.call("POST", "/v2/agents/agent-d", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-d") >= 2; }));

  a.server->stop();
  REQUIRE(eventually([&] { return v.show("agent-d")["operational_state"] == 7; }));
  json s = v.show("agent-d");
  CHECK(s["last_event_id"] == "internal.verifier.not_reachable");
  CHECK(s["attestation_status"] == "FAIL");

  a.server->start();
  REQUIRE(v.call("PUT", "/v2/agents/agent-d/reactivate").status == 200);
  const long long before = count_of(v, "agent-d");
  REQUIRE(eventually([&] { return count_of(v, "agent-d") >= before + 2; }));
  CHECK(v.show("agent-d")["operational_state"] == 3);

  REQUIRE(v.call("PUT", "/v2/agents/agent-d/stop").status == 200);
  CHECK(v.show("agent-d")["operational_state"] == 10);
  auto served = a.server->api().quotes_served();
  std::this_thread::sleep_for(700ms);
  CHECK(a.server->api().quotes_served() <= served + 1);   // at most the request already in flight

  REQUIRE(v.call("PUT", "/v2/agents/agent-d/reactivate").status == 200);
  REQUIRE(eventually([&] { return v.show("agent-d")["operational_state"] == 3; }));
  const auto del = v.call("DELETE", "/v2/agents/agent-d");
  CHECK((del.status == 200 || del.status == 202));
  REQUIRE(eventually([&] { return v.call("GET", "/v2/agents/agent-d").status == 404; }));
  served = a.server->api().quotes_served();
  std::this_thread::sleep_for(700ms);
  CHECK(a.server->api().quotes_served() == served);
}

TEST_CASE("poller: quote failures from the agent (HTTP 500) are retried like a dead agent") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-e", v.cacert());
  kl::testing::AgentHooks h;
  h.fail_quotes_with = 500;
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-e", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return v.show("agent-e")["operational_state"] == 7; }));
  CHECK(a.server->api().quotes_served() <= 10);
  CHECK(v.show("agent-e")["last_event_id"] == "internal.verifier.not_reachable");
}

TEST_CASE("poller: API version renegotiation on 'API version not supported'") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-r", v.cacert());
  kl::testing::AgentHooks h;
  h.api_versions = std::vector<std::string>{"2.1", "2.2"};
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-r", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-r") >= 2; }));
  CHECK(v.store->find_agent("agent-r")->supported_version == "2.2");
}

TEST_CASE("poller: a restarted verifier resumes every agent from the database") {
  kl::testing::TempDir dir;
  TestAgent a("agent-1", "");
  TestAgent b("agent-2", "");
  {
    Verifier v(dir.path());
    REQUIRE(v.call("POST", "/v2/agents/agent-1", a.add_body("").dump()).status == 200);
    REQUIRE(v.call("POST", "/v2/agents/agent-2", b.add_body("").dump()).status == 200);
    REQUIRE(eventually([&] { return count_of(v, "agent-1") >= 2 && count_of(v, "agent-2") >= 2; }));
  }
  Verifier v2(dir.path());
  const long long c1 = count_of(v2, "agent-1"), c2 = count_of(v2, "agent-2");
  CHECK(v2.poller->resume_all() == 2);
  REQUIRE(eventually([&] { return count_of(v2, "agent-1") >= c1 + 2 && count_of(v2, "agent-2") >= c2 + 2; }, 5s));
}
