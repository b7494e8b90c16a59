// keylime_registrar and keylime_verifier processes on one real PostgreSQL database (database_url =
// postgresql://...), over real HTTP/mTLS: software agents register and activate, one is attested by the
// verifier; GET /metrics is scraped over mTLS and on the plain metrics_port, parsed, and its counters
// checked against what was done; the rows are checked in PostgreSQL directly.
#include <catch2/catch.hpp>
#include "support/tenant_add_body.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent_server.hpp"
#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/http/client.hpp"
#include "common/service/metrics/exposition.hpp"
#include "support/pg_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using kl::metrics::parse_exposition;

namespace {

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

// Verifier + registrar sharing one PostgreSQL database (as upstream allows: their tables differ).
struct PgDeployment {
  kl::testing::TempDir dir;
  std::string db_url;
  std::uint16_t vport = kl::testing::free_tcp_port(), rport = kl::testing::free_tcp_port(),
                rtls = kl::testing::free_tcp_port(), vmetrics = kl::testing::free_tcp_port(),
                rmetrics = kl::testing::free_tcp_port();
  std::unique_ptr<kl::testing::ChildProcess> verifier, registrar;

  std::filesystem::path kl_dir() const { return dir.path() / "kl"; }
  std::filesystem::path cv_ca() const { return kl_dir() / "cv_ca"; }
  std::map<std::string, std::string> env() const {
    return {{"KEYLIME_DIR", kl_dir().string()}, {"KEYLIME_TENANT_CONFIG", (dir.path() / "tenant.conf").string()}};
  }

  explicit PgDeployment(std::string url) : db_url(std::move(url)) {
    std::filesystem::create_directories(kl_dir());
    std::filesystem::create_directories(dir.path() / "tpm_cert_store");
    std::ofstream(dir.path() / "verifier.conf")
        << "[verifier]\nip = 127.0.0.1\nport = " << vport << "\nregistrar_port = " << rtls
        << "\nquote_interval = 0.3\nretry_interval = 0.2\nmax_retries = 2\nexponential_backoff = False\n"
           "request_timeout = 3\ndatabase_url = " << db_url << "\ndatabase_pool_sz_ovfl = 3,0\nmetrics_port = "
        << vmetrics << "\n";
    std::ofstream(dir.path() / "registrar.conf")
        << "[registrar]\nip = 127.0.0.1\nport = " << rport << "\ntls_port = " << rtls
        << "\nek_cert_chain_check = off\ndatabase_url = " << db_url << "\nmetrics_port = " << rmetrics << "\n";
    std::ofstream(dir.path() / "tenant.conf") << "[tenant]\ntpm_cert_store = " << (dir.path() / "tpm_cert_store").string() << "\n";
    verifier = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_verifier").string(), "-c", (dir.path() / "verifier.conf").string()},
        env(), dir.path() / "verifier.log");
    if (!kl::testing::wait_for_port(vport, 20s)) throw std::runtime_error("verifier did not start:\n" + verifier->log());
    registrar = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_registrar").string(), "-c", (dir.path() / "registrar.conf").string()},
        env(), dir.path() / "registrar.log");
    if (!kl::testing::wait_for_port(rtls, 20s)) throw std::runtime_error("registrar did not start:\n" + registrar->log());
  }

  // mTLS with the tenant's client certificate (cv_ca), accepted by both services (trusted_client_ca = default).
  kl::http::Client mtls(std::uint16_t port, bool with_cert = true) const {
    kl::http::TlsClientConfig t;
    if (with_cert) {
      t.cert_file = (cv_ca() / "client-cert.crt").string();
      t.key_file = (cv_ca() / "client-private.pem").string();
    }
    t.ca_files = {(cv_ca() / "cacert.crt").string()};
    return kl::http::Client("127.0.0.1", port, kl::http::ClientOptions{t, 10000ms});
  }
};

json add_body(const kl::testing::AgentIdentity& id, std::uint16_t port, const std::string& mtls_cert) {
  return kl::testing::tenant_add_body(kl::base64_encode(id.ak_tpm2b_public()), port, mtls_cert);
}

kl::metrics::Scrape scrape(kl::http::Client& c) {
  const auto r = c.request("GET", "/metrics");
  INFO(r.body);
  REQUIRE(r.status == 200);
  REQUIRE(r.headers.count("content-type"));
  CHECK(r.headers.at("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  return parse_exposition(r.body);
}

}  // namespace

TEST_CASE("registrar and verifier on PostgreSQL: register, attest, /metrics over mTLS and metrics_port") {
  if (kl::testing::pg_skipped()) {
    WARN("KL_SKIP_PG=1: skipped");
    return;
  }
  auto& pg = kl::testing::shared_pg_server();
  PgDeployment d(pg.create_database());

  // Two registrations (one agent also served, for the verifier).
  kl::testing::SoftwareAgent served_identity, other_identity;
  kl::testing::AgentServerOptions ao;
  ao.uuid = "pg-agent-1";
  ao.trusted_client_ca_file = (d.cv_ca() / "cacert.crt").string();
  kl::testing::AgentServer agent(ao, served_identity);
  agent.start();
  kl::http::Client reg("127.0.0.1", d.rport);
  kl::testing::RegisterOptions ro;
  ro.agent_id = ao.uuid;
  ro.contact_port = agent.port();
  ro.mtls_cert = agent.mtls_cert_pem();
  auto outcome = kl::testing::register_and_activate(reg, served_identity, ro);
  INFO(kl::testing::to_json(outcome).dump() << "\n" << d.registrar->log());
  REQUIRE(outcome.ok());
  kl::testing::RegisterOptions ro2;
  ro2.agent_id = "pg-agent-2";
  REQUIRE(kl::testing::register_and_activate(reg, other_identity, ro2).ok());

  // The rows are in PostgreSQL, with upstream's types.
  CHECK(pg.query(d.db_url, "SELECT count(*) FROM registrarmain WHERE active") == "2");
  CHECK(pg.query(d.db_url, "SELECT regcount FROM registrarmain WHERE agent_id = 'pg-agent-2'") == "1");
  CHECK(pg.query(d.db_url, "SELECT version_num FROM alembic_version_registrar") == "a59cc9366774");
  CHECK(pg.query(d.db_url, "SELECT version_num FROM alembic_version_cloud_verifier") == "a59cc9366774");

  SECTION("registrar /metrics") {
    auto admin = d.mtls(d.rtls);
    auto s = scrape(admin);
    CHECK(s.at("keylime_registrar_registrations_total") == 2);
    CHECK(s.at("keylime_registrar_activations_total") == 2);
    CHECK(s.at("keylime_registrar_agents") == 2);
    CHECK(s.at("keylime_db_info{backend=\"postgresql\"}") == 1);
    CHECK(s.at("keylime_db_pool_size") == 5);  // upstream's default database_pool_sz_ovfl = 5,10
    CHECK(s.at("keylime_db_connections{state=\"open\"}") == 5);
    CHECK(s.at("keylime_db_operation_duration_seconds_count") >= 6);
    CHECK(s.at("keylime_http_requests_total{action=\"register_agent\",code=\"200\"}") == 2);
    // A malformed registration is counted under its own status, not as a registration.
    CHECK(reg.request("POST", "/v2.6/agents/pg-agent-3", "{\"bad\": ").status == 400);
    s = scrape(admin);
    CHECK(s.at("keylime_registrar_registrations_total") == 2);
    CHECK(s.at("keylime_http_requests_total{action=\"register_agent\",code=\"400\"}") == 1);

    // Without a client certificate, or on the plain port: no metrics.
    auto anon = d.mtls(d.rtls, false);
    CHECK(anon.request("GET", "/metrics").status == 403);
    CHECK(reg.request("GET", "/metrics").status == 400);
    // The plain metrics_port serves /metrics and nothing else.
    kl::http::Client plain("127.0.0.1", d.rmetrics);
    const auto p = plain.request("GET", "/metrics");
    REQUIRE(p.status == 200);
    CHECK(parse_exposition(p.body).at("keylime_registrar_registrations_total") == 2);
    CHECK(plain.request("GET", "/v2.6/agents").status == 404);
    CHECK(plain.request("POST", "/metrics", "x").status == 405);
  }

  SECTION("verifier attests from PostgreSQL; /metrics counts quotes and states") {
    auto tenant = d.mtls(d.vport);
    auto r = tenant.request("POST", "/v2.6/agents/" + ao.uuid,
                            add_body(served_identity, agent.port(), agent.mtls_cert_pem()).dump());
    INFO(r.body << "\n" << d.verifier->log());
    REQUIRE(r.status == 200);
    REQUIRE(eventually([&] {
      return std::stoll(pg.query(d.db_url, "SELECT coalesce(attestation_count, 0) FROM verifiermain")) >= 3;
    }));
    CHECK(pg.query(d.db_url, "SELECT operational_state FROM verifiermain") == "3");
    CHECK(pg.query(d.db_url, "SELECT verifier_id FROM verifiermain") == "default");

    auto s = scrape(tenant);
    CHECK(s.at("keylime_verifier_agents{state=\"Get Quote\",code=\"3\"}") == 1);
    CHECK(s.at("keylime_verifier_agents{state=\"Failed\",code=\"7\"}") == 0);
    CHECK(s.at("keylime_verifier_quotes_verified_total") >= 3);
    CHECK(s.at("keylime_verifier_quotes_failed_total") == 0);
    CHECK(s.at("keylime_verifier_verification_duration_seconds_count") >= 3);
    CHECK(s.at("keylime_verifier_poll_lateness_seconds_count") >= 3);
    CHECK(s.at("keylime_verifier_polled_agents") == 1);
    CHECK(s.at("keylime_db_info{backend=\"postgresql\"}") == 1);
    CHECK(s.at("keylime_db_pool_size") == 3);  // database_pool_sz_ovfl = 3,0
    CHECK(s.at("keylime_http_requests_total{action=\"create_agent\",code=\"200\"}") == 1);
    // The server sees no more connections from the verifier than its pool.
    CHECK(std::stoi(pg.query(d.db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")) <=
          5 + 3 + 1);

    CHECK(d.mtls(d.vport, false).request("GET", "/metrics").status == 403);
    kl::http::Client plain("127.0.0.1", d.vmetrics);
    const auto p = plain.request("GET", "/metrics");
    REQUIRE(p.status == 200);
    CHECK(parse_exposition(p.body).at("keylime_verifier_quotes_verified_total") >= 3);
  }
}
