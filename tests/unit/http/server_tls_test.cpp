// TLS / mTLS behaviour of kl::http::Server and Client (wire-contract §2.1, §3.1, §5).
#include <atomic>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include "common/service/http/client.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "unit/http/raw_peer.hpp"

using namespace kl::http;
namespace kt = kl::tls;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Response peer_echo(const Request& r) {
  nlohmann::json j = {{"tls", r.tls}, {"has_peer", r.peer.has_value()}};
  if (r.peer) {
    j["verified"] = r.peer->verified;
    j["cn"] = r.peer->subject_cn;
    j["pem"] = r.peer->pem;
  }
  return json_envelope(200, j);
}

// One PKI shared by the cases in this file (RSA key generation is the slow part).
struct Pki {
  kltest::TempDir dir;
  kt::IssuedFiles server = kt::make_ca_and_leaf(dir.path(), "srv", "server", {"127.0.0.1"});
  kt::IssuedFiles client = kt::make_ca_and_leaf(dir.path(), "cli", "tenant-admin", {});
  kt::IssuedFiles rogue = kt::make_ca_and_leaf(dir.path(), "rogue", "tenant-admin", {});
};

Pki& pki() {
  static Pki p;
  return p;
}

ServerOptions tls_options(bool request_client_certs = true) {
  auto& p = pki();
  TlsServerConfig tls;
  tls.cert_file = p.server.cert.string();
  tls.key_file = p.server.key.string();
  if (request_client_certs) tls.trusted_client_ca_files = {p.client.ca_cert.string()};
  ServerOptions o;
  o.listeners.push_back(ListenerConfig{"127.0.0.1", 0, tls});
  o.listeners.push_back(ListenerConfig{"127.0.0.1", 0, std::nullopt});
  return o;
}

ClientOptions client_tls(const kt::IssuedFiles* cert) {
  TlsClientConfig c;
  c.ca_files = {pki().server.ca_cert.string()};
  if (cert) {
    c.cert_file = cert->cert.string();
    c.key_file = cert->key.string();
  }
  ClientOptions o;
  o.tls = c;
  o.timeout = std::chrono::milliseconds(5000);
  return o;
}

}  // namespace

TEST_CASE("TLS client certificate that chains: peer verified with CN and PEM", "[http][tls]") {
  Server server(tls_options(), peer_echo);
  server.start();
  auto ports = server.bound_ports();
  REQUIRE(ports.size() == 2);

  Client client("127.0.0.1", ports[0], client_tls(&pki().client));
  auto res = client.request("GET", "/v2.1/agents");
  REQUIRE(res.status == 200);
  auto r = nlohmann::json::parse(res.body)["results"];
  CHECK(r["tls"] == true);
  CHECK(r["has_peer"] == true);
  CHECK(r["verified"] == true);
  CHECK(r["cn"] == "tenant-admin");
  CHECK(r["pem"] == slurp(pki().client.cert));
  // Kept-alive TLS connection serves a second request.
  CHECK(client.request("GET", "/again").status == 200);

  // The plain listener of the same server reports no TLS and no peer.
  Client plain("127.0.0.1", ports[1]);
  auto p = nlohmann::json::parse(plain.request("GET", "/").body)["results"];
  CHECK(p["tls"] == false);
  CHECK(p["has_peer"] == false);
}

TEST_CASE("TLS without client certificate: request served, peer empty", "[http][tls]") {
  Server server(tls_options(), peer_echo);
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0], client_tls(nullptr));
  auto res = client.request("GET", "/version");
  REQUIRE(res.status == 200);
  auto r = nlohmann::json::parse(res.body)["results"];
  CHECK(r["tls"] == true);
  CHECK(r["has_peer"] == false);
}

TEST_CASE("TLS listener that does not request client certs ignores the client's", "[http][tls]") {
  Server server(tls_options(false), peer_echo);
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0], client_tls(&pki().client));
  auto r = nlohmann::json::parse(client.request("GET", "/").body)["results"];
  CHECK(r["has_peer"] == false);
}

// Upstream uses Python's ssl.CERT_OPTIONAL: a certificate that is sent must verify, or the
// handshake fails ("unknown ca"). We do the same, so an unauthorised tenant never reaches a route.
// With TLS 1.3 the client learns this on its first read rather than in the handshake.
TEST_CASE("TLS client certificate from another CA is refused at the TLS layer", "[http][tls]") {
  std::atomic<int> calls{0};
  Server server(tls_options(), [&](const Request& r) {
    ++calls;
    return peer_echo(r);
  });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0], client_tls(&pki().rogue));
  CHECK_THROWS_AS(client.request("GET", "/v2.1/agents"), std::runtime_error);
  CHECK(calls == 0);

  // The server is unaffected: a good client still gets through.
  Client good("127.0.0.1", server.bound_ports()[0], client_tls(&pki().client));
  CHECK(good.request("GET", "/").status == 200);
  CHECK(calls == 1);
}

TEST_CASE("TLS 1.1 and 1.0 clients are refused, 1.2 and 1.3 accepted", "[http][tls]") {
  Server server(tls_options(), peer_echo);
  server.start();
  auto port = server.bound_ports()[0];
  auto e11 = kltest::tls_handshake_with_version(port, TLS1_1_VERSION);
  auto e10 = kltest::tls_handshake_with_version(port, TLS1_VERSION);
  INFO(e11 << " / " << e10);
  CHECK(e11.find("protocol version") != std::string::npos);
  CHECK(e10.find("protocol version") != std::string::npos);
  CHECK(kltest::tls_handshake_with_version(port, TLS1_2_VERSION).empty());
  CHECK(kltest::tls_handshake_with_version(port, TLS1_3_VERSION).empty());
}

TEST_CASE("client rejects a server not signed by its trusted CA", "[http][tls]") {
  Server server(tls_options(), peer_echo);
  server.start();
  TlsClientConfig c;
  c.ca_files = {pki().rogue.ca_cert.string()};
  ClientOptions o;
  o.tls = c;
  Client client("127.0.0.1", server.bound_ports()[0], o);
  CHECK_THROWS_WITH(client.request("GET", "/"), Catch::Contains("TLS handshake with 127.0.0.1") &&
                                                    Catch::Contains("unable to get local issuer certificate"));

  // verify_server = false accepts anything (trust option "all").
  c.verify_server = false;
  o.tls = c;
  Client lax("127.0.0.1", server.bound_ports()[0], o);
  CHECK(lax.request("GET", "/").status == 200);
}

TEST_CASE("client pinning to a self-signed server certificate (agent mTLS, §5.2)", "[http][tls]") {
  kltest::TempDir dir;
  auto agent = kt::make_self_signed(dir.path(), "agent", "agent-uuid", {"127.0.0.1"});
  auto other = kt::make_self_signed(dir.path(), "other", "agent-uuid", {"127.0.0.1"});

  // The agent side requires the verifier's client cert chaining to its CA.
  TlsServerConfig tls;
  tls.cert_file = agent.cert.string();
  tls.key_file = agent.key.string();
  tls.trusted_client_ca_files = {pki().client.ca_cert.string()};
  ServerOptions so;
  so.listeners.push_back(ListenerConfig{"127.0.0.1", 0, tls});
  Server server(so, peer_echo);
  server.start();
  auto port = server.bound_ports()[0];

  TlsClientConfig c;
  c.cert_file = pki().client.cert.string();
  c.key_file = pki().client.key.string();
  c.pinned_server_pems = {slurp(agent.cert)};
  ClientOptions o;
  o.tls = c;
  Client pinned("127.0.0.1", port, o);
  auto res = pinned.request("GET", "/v2.1/quotes/integrity?nonce=1");
  REQUIRE(res.status == 200);
  CHECK(nlohmann::json::parse(res.body)["results"]["cn"] == "tenant-admin");

  c.pinned_server_pems = {slurp(other.cert)};
  o.tls = c;
  Client wrong("127.0.0.1", port, o);
  CHECK_THROWS_WITH(wrong.request("GET", "/"), Catch::Contains("TLS handshake"));

  c.pinned_server_pems = {"not a pem"};
  o.tls = c;
  CHECK_THROWS_WITH(Client("127.0.0.1", port, o), Catch::Contains("pinned server certificate"));
}

TEST_CASE("TLS server configuration errors name the file", "[http][tls]") {
  TlsServerConfig tls;
  tls.cert_file = "/nonexistent/server-cert.crt";
  tls.key_file = pki().server.key.string();
  ServerOptions o;
  o.listeners.push_back(ListenerConfig{"127.0.0.1", 0, tls});
  Server s1(o, peer_echo);
  CHECK_THROWS_WITH(s1.start(), Catch::Contains("/nonexistent/server-cert.crt"));

  // Key of another certificate.
  o.listeners[0].tls->cert_file = pki().server.cert.string();
  o.listeners[0].tls->key_file = pki().client.key.string();
  Server s2(o, peer_echo);
  CHECK_THROWS_WITH(s2.start(), Catch::Contains("cli-private.pem"));

  o.listeners[0].tls->key_file = pki().server.key.string();
  o.listeners[0].tls->trusted_client_ca_files = {"/nonexistent/cacert.crt"};
  Server s3(o, peer_echo);
  CHECK_THROWS_WITH(s3.start(), Catch::Contains("/nonexistent/cacert.crt"));
}
