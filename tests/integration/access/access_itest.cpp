// Access control over real sockets: every admin route of keylime_registrar and keylime_verifier refuses a
// missing client certificate, one from another CA and an expired one from the trusted CA; plain HTTP reaches
// only registration, activation and version. Per-peer connection and request-rate limits: one peer beyond its
// limit is refused while another peer (distinct 127.0.0.x source address) is still served.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/attest/crypto/ossl.hpp"
#include "integration/hostile/deployment.hpp"
#include "integration/hostile/raw_conn.hpp"
#include "support/cert_issue.hpp"

using namespace std::chrono_literals;

namespace {

constexpr const char* kAgent = "access-agent-1";

std::string request(const std::string& method, const std::string& path, const std::string& body = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A client certificate for `key`, issued by (ca_key, ca_cert), valid from now+from_days to now+to_days.
kl::ossl::X509Ptr client_cert(EVP_PKEY* key, EVP_PKEY* ca_key, X509* ca_cert, long from_days, long to_days) {
  kl::ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242 + from_days);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("access-test-client"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_days * 86400L);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_days * 86400L);
  X509_set_pubkey(cert.get(), key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert, cert.get(), nullptr, nullptr, 0);
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_ext_key_usage, "clientAuth")) {
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) <= 0) throw std::runtime_error("X509_sign failed");
  return cert;
}

void write_pem(const std::filesystem::path& p, X509* cert) { std::ofstream(p) << kl::testing::cert_to_pem(cert); }
void write_key(const std::filesystem::path& p, EVP_PKEY* key) {
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::ofstream(p) << std::string(data, static_cast<std::size_t>(n));
}

// Client credentials that must all be refused on admin routes.
struct BadCredentials {
  hostile::TlsOptions none, other_ca, expired, not_yet_valid;
};

BadCredentials make_bad_credentials(const hostile::Deployment& d) {
  const auto dir = d.tmp();
  const std::string server_ca = (d.ca_dir() / "cacert.crt").string();
  kl::ossl::Pkey key(EVP_EC_gen("P-256"));
  write_key(dir / "client.key", key.get());
  // Another CA, same subject as the trusted one (a lookalike).
  auto other = kl::testing::make_test_ca("Keylime Certificate Authority");
  auto c1 = client_cert(key.get(), other.key.get(), other.cert.get(), -1, 365);
  write_pem(dir / "other-ca-client.crt", c1.get());
  // Issued by the trusted CA itself, but expired / not yet valid.
  auto ca_key = kl::testing::read_private_key_pem((d.ca_dir() / "ca-private.pem").string());
  auto ca_cert = kl::testing::read_cert_pem(server_ca);
  auto c2 = client_cert(key.get(), ca_key.get(), ca_cert.get(), -30, -1);
  write_pem(dir / "expired-client.crt", c2.get());
  auto c3 = client_cert(key.get(), ca_key.get(), ca_cert.get(), 10, 20);
  write_pem(dir / "future-client.crt", c3.get());
  const std::string k = (dir / "client.key").string();
  return {{"", "", server_ca},
          {(dir / "other-ca-client.crt").string(), k, server_ca},
          {(dir / "expired-client.crt").string(), k, server_ca},
          {(dir / "future-client.crt").string(), k, server_ca}};
}

struct Route {
  std::string method, path, body;
};

// A request is refused when the handshake fails, the connection closes without an answer, or the answer is
// 400/401/403. Returns a description of what happened when it was NOT refused.
std::optional<std::string> not_refused(std::uint16_t port, const hostile::TlsContext* tls, const Route& r) {
  hostile::RawConn conn(port, tls);
  if (!conn.handshake_ok()) return std::nullopt;
  if (!conn.send(request(r.method, r.path, r.body))) return std::nullopt;
  auto reply = conn.read_reply(5s);
  if (reply.status == 0) return std::nullopt;
  if (reply.status == 400 || reply.status == 401 || reply.status == 403) return std::nullopt;
  return "status " + std::to_string(reply.status);
}

int status_of(std::uint16_t port, const hostile::TlsContext* tls, const Route& r, const std::string& source = "") {
  hostile::RawConn conn(port, tls, source);
  if (!conn.handshake_ok()) return -1;
  conn.send(request(r.method, r.path, r.body));
  return conn.read_reply(5s).status;
}

std::vector<Route> registrar_admin_routes() {
  std::vector<Route> r;
  for (std::string v : {"/v2.1", "/v2.6", "/v3.0"}) {
    r.push_back({"GET", v + "/agents", ""});
    r.push_back({"GET", v + "/agents/" + kAgent, ""});
    r.push_back({"DELETE", v + "/agents/" + kAgent, ""});
  }
  return r;
}

std::vector<Route> verifier_admin_routes() {
  std::vector<Route> r;
  const std::string v = "/v2.6";
  const std::string a = v + "/agents/" + kAgent;
  for (const Route& x : std::vector<Route>{{"GET", v + "/agents", ""},
                                           {"GET", a, ""},
                                           {"POST", a, "{}"},
                                           {"DELETE", a, ""},
                                           {"PUT", a, "{}"},
                                           {"PUT", a + "/reactivate", "{}"},
                                           {"PUT", a + "/stop", "{}"},
                                           {"GET", v + "/allowlists", ""},
                                           {"GET", v + "/allowlists/p1", ""},
                                           {"POST", v + "/allowlists/p1", "{\"runtime_policy\": \"\"}"},
                                           {"PUT", v + "/allowlists/p1", "{\"runtime_policy\": \"\"}"},
                                           {"DELETE", v + "/allowlists/p1", ""},
                                           {"GET", v + "/mbpolicies", ""},
                                           {"GET", v + "/mbpolicies/m1", ""},
                                           {"POST", v + "/mbpolicies/m1", "{\"mb_policy\": \"{}\"}"},
                                           {"PUT", v + "/mbpolicies/m1", "{\"mb_policy\": \"{}\"}"},
                                           {"DELETE", v + "/mbpolicies/m1", ""}})
    r.push_back(x);
  return r;
}

}  // namespace

TEST_CASE("access control: admin routes refuse missing, foreign-CA, expired and not-yet-valid client certificates",
          "[access]") {
  hostile::Deployment d;
  REQUIRE(d.register_agent(kAgent));
  const auto bad = make_bad_credentials(d);
  hostile::TlsContext good(d.admin_tls());
  const std::string before = d.db_fingerprint();

  struct Service {
    std::string name;
    std::uint16_t port;
    std::vector<Route> routes;
  };
  const std::vector<Service> services = {{"registrar", d.registrar_tls_port(), registrar_admin_routes()},
                                         {"verifier", d.verifier_port(), verifier_admin_routes()}};
  std::vector<std::string> failures;
  int checks = 0;
  for (const auto& [cred_name, cred] : std::vector<std::pair<std::string, hostile::TlsOptions>>{
           {"no certificate", bad.none},
           {"other CA", bad.other_ca},
           {"expired", bad.expired},
           {"not yet valid", bad.not_yet_valid}}) {
    hostile::TlsContext ctx(cred);
    for (const auto& s : services) {
      for (const auto& r : s.routes) {
        ++checks;
        if (auto what = not_refused(s.port, &ctx, r))
          failures.push_back(s.name + " " + r.method + " " + r.path + " with " + cred_name + ": " + *what);
      }
    }
  }
  // The same read-only routes are reachable with the trusted client certificate (so the refusals above are
  // about the credential, not a broken route).
  for (const auto& s : services)
    for (const auto& r : s.routes)
      if (r.method == "GET") {
        int st = status_of(s.port, &good, r);
        if (st != 200 && st != 404) failures.push_back(s.name + " GET " + r.path + " with the good cert: " + std::to_string(st));
      }
  std::ostringstream all;
  for (const auto& f : failures) all << f << "\n";
  INFO(checks << " refusal checks\n" << all.str());
  CHECK(checks >= 80);
  CHECK(failures.empty());
  CHECK(d.db_fingerprint() == before);
}

TEST_CASE("access control: plain HTTP reaches only registration, activation and version", "[access]") {
  hostile::Deployment d;
  REQUIRE(d.register_agent(kAgent));
  const std::string before = d.db_fingerprint();
  const auto port = d.registrar_port();
  std::vector<std::string> failures;
  // Admin routes over plain HTTP: refused, for every API version.
  for (const auto& r : registrar_admin_routes())
    if (auto what = not_refused(port, nullptr, r)) failures.push_back("plain " + r.method + " " + r.path + ": " + *what);
  // What plain HTTP may reach.
  if (int st = status_of(port, nullptr, {"GET", "/version", ""}); st != 200)
    failures.push_back("plain GET /version: " + std::to_string(st));
  if (int st = status_of(port, nullptr, {"GET", "/v3.0/", ""}); st != 200)
    failures.push_back("plain GET /v3.0/: " + std::to_string(st));
  // Registration and activation routes answer on their merits (bad bodies -> 400 with a reason, unknown agent ->
  // 404), never 401/403.
  for (const Route& r : std::vector<Route>{{"POST", "/v2.1/agents/access-new-1", "{}"},
                                           {"POST", "/v3.0/agents", "{}"},
                                           {"POST", std::string("/v2.1/agents/unknown-agent/activate"), "{\"auth_tag\": \"00\"}"},
                                           {"PUT", std::string("/v2.1/agents/unknown-agent"), "{\"auth_tag\": \"00\"}"}}) {
    int st = status_of(port, nullptr, r);
    if (st == 401 || st == 403 || st >= 500 || st <= 0) failures.push_back("plain " + r.method + " " + r.path + ": " + std::to_string(st));
  }
  // A full registration works over plain HTTP.
  if (!d.register_agent("access-agent-2")) failures.push_back("plain registration + activation failed");
  // The verifier has no plain-HTTP port: plain HTTP on its TLS port gets no HTTP answer.
  {
    hostile::RawConn conn(d.verifier_port(), nullptr);
    conn.send(request("GET", "/version"));
    auto r = conn.read_reply(5s);
    if (r.status != 0) failures.push_back("verifier answered plain HTTP with " + std::to_string(r.status));
  }
  std::ostringstream all;
  for (const auto& f : failures) all << f << "\n";
  INFO(all.str());
  CHECK(failures.empty());
  CHECK(d.db_fingerprint() != before);  // access-agent-2 was stored (and nothing else is asserted about it here)
}

TEST_CASE("per-peer limits: connections beyond the cap refused while another peer is served, request rate 429",
          "[access]") {
  const std::string limits =
      "server_max_connections_per_peer = 6\nserver_max_requests_per_second_per_peer = 20\nserver_request_timeout = 30\n";
  hostile::Deployment d({limits, limits});
  hostile::TlsContext admin(d.admin_tls());
  struct Port {
    std::string name;
    std::uint16_t port;
    const hostile::TlsContext* tls;
    std::string path;
  };
  const std::vector<Port> ports = {{"registrar plain", d.registrar_port(), nullptr, "/version"},
                                   {"registrar mtls", d.registrar_tls_port(), &admin, "/v2.1/agents"},
                                   {"verifier mtls", d.verifier_port(), &admin, "/v2.6/agents/"}};
  int src = 10;
  for (const auto& p : ports) {
    INFO(p.name);
    const std::string hog = "127.0.0." + std::to_string(src++), other = "127.0.0." + std::to_string(src++);
    // The hog holds its 6 connections open (one request each, kept alive).
    std::vector<std::unique_ptr<hostile::RawConn>> held;
    for (int i = 0; i < 6; ++i) {
      held.push_back(std::make_unique<hostile::RawConn>(p.port, p.tls, hog));
      REQUIRE(held.back()->handshake_ok());
      held.back()->send(request("GET", p.path));
      REQUIRE(held.back()->read_reply(5s).status == 200);
    }
    // Further connections from the hog are closed without an answer...
    int refused = 0;
    for (int i = 0; i < 5; ++i) {
      hostile::RawConn extra(p.port, p.tls, hog);
      if (!extra.handshake_ok()) {
        ++refused;
        continue;
      }
      extra.send(request("GET", p.path));
      auto r = extra.read_reply(3s);
      if (r.status == 0 && r.closed) ++refused;
    }
    CHECK(refused == 5);
    // ...while another peer is served, on a new connection each time.
    for (int i = 0; i < 5; ++i) CHECK(status_of(p.port, p.tls, {"GET", p.path, ""}, other) == 200);
    // Once the hog lets go, it is served again.
    held.clear();
    std::this_thread::sleep_for(200ms);
    CHECK(status_of(p.port, p.tls, {"GET", p.path, ""}, hog) == 200);
  }
  // Request rate: 20/s sustained, bursts of 40. A peer firing 100 requests on one connection gets 429s after its
  // burst; another peer is unaffected.
  {
    const std::string flooder = "127.0.0.50", calm = "127.0.0.51";
    hostile::RawConn conn(d.registrar_port(), nullptr, flooder);
    int ok = 0, limited = 0, other = 0;
    for (int i = 0; i < 100; ++i) {
      if (!conn.send(request("GET", "/version"))) break;
      auto r = conn.read_reply(3s);
      if (r.status == 200) ++ok;
      else if (r.status == 429) {
        ++limited;
        break;  // a 429 closes the connection
      } else ++other;
    }
    int more_limited = 0;
    for (int i = 0; i < 10; ++i)
      if (status_of(d.registrar_port(), nullptr, {"GET", "/version", ""}, flooder) == 429) ++more_limited;
    INFO("flooder: " << ok << " ok, " << limited << " limited, " << other << " other; then " << more_limited << "/10 limited");
    CHECK(ok >= 35);
    CHECK(ok <= 60);
    CHECK(limited == 1);
    CHECK(other == 0);
    CHECK(more_limited >= 5);
    for (int i = 0; i < 5; ++i) CHECK(status_of(d.registrar_port(), nullptr, {"GET", "/version", ""}, calm) == 200);
    // The bucket refills: after a second the flooder is served again.
    std::this_thread::sleep_for(1100ms);
    CHECK(status_of(d.registrar_port(), nullptr, {"GET", "/version", ""}, flooder) == 200);
  }
}
