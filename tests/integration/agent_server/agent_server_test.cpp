// The test agent's server mode over real sockets: quotes fetched over mTLS (the agent's self-signed cert pinned,
// the verifier's client cert chaining to the agent's trusted CA) parse and verify with the project's quote code,
// against a real swtpm (TpmAgent) and against the software TPM; the failure hooks break exactly what they claim.
#include <chrono>
#include <future>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/agent_server.hpp"
#include "agent/fleet.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/tls/cert_builder.hpp"
#include "support/process.hpp"
#include "support/swtpm.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using namespace kl::testing;
using kl::http::AsyncClient;
using kl::http::AsyncTarget;
using kl::http::ClientResponse;

namespace {

struct Outcome {
  std::optional<ClientResponse> response;
  std::string error;
  nlohmann::json json() const { return response ? nlohmann::json::parse(response->body, nullptr, false) : nullptr; }
};

Outcome call(AsyncClient& client, const AsyncTarget& t, const std::string& method, const std::string& path,
             std::string body = "") {
  std::promise<Outcome> p;
  client.request(t, method, path, std::move(body), 20s,
                 [&p](std::optional<ClientResponse> r, std::string e) { p.set_value({std::move(r), std::move(e)}); });
  auto f = p.get_future();
  if (f.wait_for(30s) != std::future_status::ready) return {std::nullopt, "test: no completion"};
  return f.get();
}

// The verifier side: a CA (its cv_ca) and a client certificate it issued.
struct VerifierPki {
  TempDir dir;
  std::string ca_file, client_cert, client_key;
  VerifierPki() {
    auto ca_key = kl::tls::generate_rsa_key(2048);
    auto ca = kl::tls::issue_certificate({"Keylime Certificate Authority", {}, true, 30}, ca_key.get(), nullptr, nullptr);
    auto key = kl::tls::generate_rsa_key(2048);
    auto cert = kl::tls::issue_certificate({"verifier", {"127.0.0.1"}, false, 30}, key.get(), ca.get(), ca_key.get());
    ca_file = (dir.path() / "cacert.crt").string();
    client_cert = (dir.path() / "client-cert.crt").string();
    client_key = (dir.path() / "client-private.pem").string();
    kl::tls::write_file(ca_file, kl::tls::to_pem(ca.get()), 0644, false);
    kl::tls::write_file(client_cert, kl::tls::to_pem(cert.get()), 0644, false);
    kl::tls::write_file(client_key, kl::tls::to_pem(key.get()), 0600, false);
  }
  kl::http::AsyncClientOptions client_options() const {
    kl::http::AsyncClientOptions o;
    o.client_cert_file = client_cert;
    o.client_key_file = client_key;
    o.ca_files = {ca_file};
    return o;
  }
};

VerifierPki& pki() {
  static VerifierPki instance;
  return instance;
}

kl::quote::QuoteCheck fetch_and_verify(AsyncClient& client, const AsyncTarget& t, kl::ByteView ak_tpm2b,
                                       const std::string& nonce, const std::string& mask, nlohmann::json* results_out = nullptr) {
  auto r = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=" + nonce + "&mask=" + mask + "&partial=0&ima_ml_entry=0");
  REQUIRE(r.error == "");
  REQUIRE(r.response);
  REQUIRE(r.response->status == 200);
  auto j = r.json();
  REQUIRE(j.is_object());
  CHECK(j["code"] == 200);
  CHECK(j["status"] == "Success");
  const auto& res = j["results"];
  CHECK(res["hash_alg"] == "sha256");
  REQUIRE(res["quote"].is_string());
  REQUIRE(res["pubkey"].is_string());
  if (results_out) *results_out = res;
  auto parts = kl::quote::parse_quote_string(res["quote"].get<std::string>());
  auto ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(ak_tpm2b));
  return kl::quote::verify_quote(parts, nonce, "sha256", ak.get());
}

kl::Bytes pcr16_binding(const std::string& pubkey_pem) {
  kl::Bytes buf(32, 0);
  auto h = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(pubkey_pem));
  buf.insert(buf.end(), h.begin(), h.end());
  return kl::crypto::digest(kl::crypto::HashAlg::sha256, buf);
}

// Runs the hook cases against any AgentServer (TPM- or software-backed).
void check_hooks(AgentServer& server, AsyncClient& client, const AsyncTarget& t, kl::ByteView ak) {
  SECTION("wrong nonce") {
    AgentHooks h;
    h.quote_nonce = "notTheNonceYouSent";
    server.api().set_hooks(h);
    auto check = fetch_and_verify(client, t, ak, "abcdefghij0123456789", "0x0");
    CHECK_FALSE(check.ok());
    CHECK(check.error.find("nonce") != std::string::npos);
  }
  SECTION("tampered quote") {
    AgentHooks h;
    h.tamper_quote = true;
    server.api().set_hooks(h);
    auto check = fetch_and_verify(client, t, ak, "abcdefghij0123456789", "0x0");
    CHECK_FALSE(check.ok());
    CHECK_FALSE(check.error.empty());
  }
  SECTION("swapped AK") {
    AgentHooks h;
    h.swap_ak = true;
    server.api().set_hooks(h);
    auto check = fetch_and_verify(client, t, ak, "abcdefghij0123456789", "0x0");
    CHECK_FALSE(check.ok());
    CHECK_FALSE(check.error.empty());
  }
  SECTION("a PCR value change shows up in the next quote") {
    auto before = fetch_and_verify(client, t, ak, "nonce1", "0x400");
    REQUIRE(before.ok());
    server.pcr_extend(10, kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes("file")));
    auto after = fetch_and_verify(client, t, ak, "nonce2", "0x400");
    REQUIRE(after.ok());
    CHECK(before.quote->pcrs.at(10) != after.quote->pcrs.at(10));
    CHECK(before.quote->pcrs.at(16) == after.quote->pcrs.at(16));
  }
  SECTION("quote errors are reported with the agent's envelope") {
    AgentHooks h;
    h.fail_quotes_with = 500;
    server.api().set_hooks(h);
    auto r = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=abc&mask=0x0&partial=1");
    REQUIRE(r.response);
    CHECK(r.response->status == 500);
    CHECK(r.json()["status"] == "Unable to retrieve quote");
  }
  SECTION("API version override makes old versions unsupported") {
    AgentHooks h;
    h.api_versions = std::vector<std::string>{"2.1"};
    server.api().set_hooks(h);
    auto r = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=abc&mask=0x0&partial=1");
    REQUIRE(r.response);
    CHECK(r.response->status == 400);
    CHECK(r.json()["status"].get<std::string>().find("API version not supported") != std::string::npos);
    auto v = call(client, t, "GET", "/version").json();
    CHECK(v["results"]["supported_versions"] == nlohmann::json::array({"2.1"}));
  }
}

}  // namespace

TEST_CASE("agent server on swtpm: quote over mTLS verifies against the AK and nonce", "[agent_server][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  Swtpm swtpm;
  TpmAgent tpm(swtpm.tcti(), TpmAgent::EkAlg::rsa2048);
  AgentServerOptions so;
  so.uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
  so.trusted_client_ca_file = pki().ca_file;
  AgentServer server(so, tpm);
  server.start();
  REQUIRE(server.port() != 0);
  REQUIRE(server.mtls_cert_pem().find("BEGIN CERTIFICATE") != std::string::npos);

  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, pki().client_options());
  AsyncTarget t{"127.0.0.1", server.port(), true, server.mtls_cert_pem()};
  const kl::Bytes ak = tpm.ak_tpm2b_public();

  SECTION("good quote") {
    nlohmann::json res;
    auto check = fetch_and_verify(client, t, ak, "1234567890ABCDEFHIJK", "0x408400", &res);
    INFO(check.error);
    REQUIRE(check.ok());
    CHECK(res["sign_alg"] == "rsassa");
    CHECK(res["enc_alg"] == "rsa2048");   // API >= 2.5 spelling
    CHECK(check.quote->pcrs.count(10) == 1);
    CHECK(check.quote->pcrs.count(15) == 1);
    CHECK(check.quote->pcrs.count(22) == 1);
    REQUIRE(check.quote->pcrs.count(16) == 1);
    CHECK(check.quote->pcrs.at(16) == pcr16_binding(res["pubkey"].get<std::string>()));
    CHECK_FALSE(res.contains("ima_measurement_list"));
    CHECK_FALSE(res.contains("mb_measurement_list"));
  }
  SECTION("identity quote binds PCR 16 only") {
    auto r = call(client, t, "GET", "/v2.1/quotes/identity?nonce=abc123");
    REQUIRE(r.response);
    auto j = r.json();
    REQUIRE(j["code"] == 200);
    CHECK(j["results"]["enc_alg"] == "rsa");   // API 2.1 spelling
    auto parts = kl::quote::parse_quote_string(j["results"]["quote"].get<std::string>());
    auto key = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(ak));
    auto check = kl::quote::verify_quote(parts, "abc123", "sha256", key.get());
    REQUIRE(check.ok());
    CHECK(check.quote->pcrs.size() == 1);
    CHECK(check.quote->pcrs.at(16) == pcr16_binding(j["results"]["pubkey"].get<std::string>()));
  }
  SECTION("hooks") { check_hooks(server, client, t, ak); }
  SECTION("a client without a certificate is refused") {
    AsyncClient anonymous(loop, {});
    auto r = call(anonymous, t, "GET", "/version");
    REQUIRE(r.response);
    CHECK(r.response->status == 403);
  }
}

TEST_CASE("agent server (software TPM): quotes, keys, revocation, down and back", "[agent_server]") {
  SoftwareAgent agent(SoftwareAgent::EkAlg::ecc_p256);
  AgentServerOptions so;
  so.uuid = "software-agent-1";
  so.trusted_client_ca_file = pki().ca_file;
  AgentServer server(so, agent);
  server.start();
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, pki().client_options());
  AsyncTarget t{"127.0.0.1", server.port(), true, server.mtls_cert_pem()};
  const kl::Bytes ak = agent.ak_tpm2b_public();

  SECTION("good quote: ECDSA AK, PCR 16 bound, malformed parameters refused") {
    nlohmann::json res;
    auto check = fetch_and_verify(client, t, ak, "abcdefghij0123456789", "0x1", &res);
    INFO(check.error);
    REQUIRE(check.ok());
    CHECK(res["sign_alg"] == "ecdsa");
    CHECK(res["enc_alg"] == "ecc256");
    CHECK(check.quote->pcrs.at(16) == pcr16_binding(res["pubkey"].get<std::string>()));
    // The TPM clock grows between quotes (the verifier's clock check relies on it).
    auto again = fetch_and_verify(client, t, ak, "second", "0x1");
    REQUIRE(again.ok());
    CHECK(again.quote->clock.clock > check.quote->clock.clock);

    auto bad = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=a-b&mask=0x1&partial=0");
    CHECK(bad.response->status == 400);
    CHECK(bad.json()["status"] == "nonce should be strictly alphanumeric: a-b");
    bad = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=ab&mask=0x1&partial=2");
    CHECK(bad.json()["status"] == "uri must contain key 'partial' and value '0' or '1'");
    bad = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=" + std::string(65, 'a') + "&mask=0x1&partial=1");
    CHECK(bad.json()["status"] == "Nonce is too long (max size: 64): 65");
    bad = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=ab&mask=0x123456789&partial=1");
    CHECK(bad.json()["status"] == "mask should be a hex encoded 32-bit integer: 0x123456789");
    auto partial = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=ab&mask=0x1&partial=1").json();
    CHECK_FALSE(partial["results"].contains("pubkey"));
  }
  SECTION("IMA log served from ima_ml_entry") {
    server.api().set_ima_log("line0\nline1\nline2\n");
    nlohmann::json res;
    REQUIRE(fetch_and_verify(client, t, ak, "n0", "0x400", &res).ok());
    CHECK(res["ima_measurement_list"] == "line0\nline1\nline2\n");
    CHECK(res["ima_measurement_list_entry"] == 0);
    auto r = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=n1&mask=0x400&partial=1&ima_ml_entry=2").json();
    CHECK(r["results"]["ima_measurement_list"] == "line2\n");
    CHECK(r["results"]["ima_measurement_list_entry"] == 2);
    r = call(client, t, "GET", "/v2.6/quotes/integrity?nonce=n1&mask=0x400&partial=1&ima_ml_entry=9").json();
    CHECK(r["results"]["ima_measurement_list_entry"] == 0);   // past the end: the list restarted
  }
  SECTION("U and V keys, then keys/verify gives HMAC-SHA384(U xor V, challenge)") {
    const std::string pem = server.api().payload_pubkey_pem();
    const kl::Bytes u(32, 0x11), v(32, 0x22);
    CHECK(call(client, t, "GET", "/v2.6/keys/verify?challenge=abc").json()["status"] == "Bootstrap key not yet available.");
    auto r = call(client, t, "POST", "/v2.6/keys/ukey",
                  nlohmann::json{{"encrypted_key", encrypt_for_agent(pem, u)}, {"auth_tag", "00"}}.dump());
    CHECK(r.response->status == 200);
    r = call(client, t, "POST", "/v2.6/keys/vkey", nlohmann::json{{"encrypted_key", encrypt_for_agent(pem, v)}}.dump());
    CHECK(r.response->status == 200);
    CHECK(r.json() == nlohmann::json{{"code", 200}, {"status", "Success"}, {"results", nlohmann::json::object()}});
    REQUIRE(server.api().v_key());
    CHECK(*server.api().v_key() == v);
    const kl::Bytes k(32, 0x33);
    auto j = call(client, t, "GET", "/v2.6/keys/verify?challenge=abc").json();
    CHECK(j["results"]["hmac"] == kl::hex_encode(kl::crypto::hmac(kl::crypto::HashAlg::sha384, k, kl::as_bytes("abc"))));
    r = call(client, t, "POST", "/v2.6/keys/vkey", R"({"encrypted_key":"!!!"})");
    CHECK(r.response->status == 400);
    r = call(client, t, "POST", "/v2.6/keys/vkey", R"({"encrypted_key":")" + kl::base64_encode(kl::Bytes(256, 1)) + "\"}");
    CHECK(r.response->status == 400);
  }
  SECTION("revocation notifications are recorded") {
    const std::string body = R"({"msg":"{\"type\": \"revocation\"}","signature":""})";
    auto r = call(client, t, "POST", "/v2.6/notifications/revocation", body);
    CHECK(r.response->status == 200);
    auto rev = server.api().revocations();
    REQUIRE(rev.size() == 1);
    CHECK(rev[0]["msg"] == "{\"type\": \"revocation\"}");
  }
  SECTION("agent info (2.2+) and unknown routes") {
    auto j = call(client, t, "GET", "/v2.2/agent/info").json();
    CHECK(j["results"]["agent_uuid"] == "software-agent-1");
    CHECK(j["results"]["tpm_sign_alg"] == "ecdsa");
    CHECK(call(client, t, "GET", "/v2.1/agent/info").response->status == 400);
    CHECK(call(client, t, "GET", "/v2.6/nothing").response->status == 400);
  }
  SECTION("go down, come back on the same port") {
    const auto port = server.port();
    server.stop();
    CHECK_FALSE(server.running());
    auto r = call(client, t, "GET", "/version");
    CHECK_FALSE(r.response);
    server.start();
    CHECK(server.port() == port);
    auto check = fetch_and_verify(client, t, ak, "back", "0x0");
    CHECK(check.ok());
  }
  SECTION("hooks") { check_hooks(server, client, t, ak); }
}

TEST_CASE("agent server without mTLS serves plain HTTP", "[agent_server]") {
  SoftwareAgent agent;
  AgentServerOptions so;
  so.uuid = "plain";
  so.mtls = false;
  AgentServer server(so, agent);
  server.start();
  CHECK(server.mtls_cert_or_disabled() == "disabled");
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", server.port(), false, ""};
  auto check = fetch_and_verify(client, t, agent.ak_tpm2b_public(), "plainnonce", "0x0");
  CHECK(check.ok());
}

TEST_CASE("fleet: many software agents in one process, routed by Host", "[agent_server][fleet]") {
  FleetOptions fo;
  fo.agents = 20;
  fo.mtls = true;
  fo.trusted_client_ca_file = pki().ca_file;
  Fleet fleet(fo);
  fleet.start();
  kl::loop::EventLoop loop(2);
  AsyncClient client(loop, pki().client_options());
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    auto& a = fleet.agent(i);
    CHECK(a.address.rfind("127.1.0.", 0) == 0);
    AsyncTarget t{a.address, a.port, true, fleet.mtls_cert_pem()};
    auto check = fetch_and_verify(client, t, a.identity->ak_tpm2b_public(), "fleet" + std::to_string(i), "0x0");
    INFO(a.uuid << ": " << check.error);
    CHECK(check.ok());
    // Another agent's AK must not verify it (each agent has its own AK).
    if (i > 0) {
      auto other = fetch_and_verify(client, t, fleet.agent(i - 1).identity->ak_tpm2b_public(), "x", "0x0");
      CHECK_FALSE(other.ok());
    }
  }
  CHECK(fleet.quotes_served() == 2 * fleet.size() - 1);
  CHECK(fleet.requests_unrouted() == 0);
}

TEST_CASE("kl_test_agent serve --software answers /version and quotes", "[agent_server][binary]") {
  const std::string exe = std::string(KL_BINARY_DIR) + "/tests/kl_test_agent";
  if (!std::filesystem::exists(exe)) {
    WARN("kl_test_agent not built: skipped");
    return;
  }
  TempDir dir;
  const auto port = free_tcp_port();
  ChildProcess child({exe, "serve", "--uuid", "cli-agent", "--port", std::to_string(port), "--software", "--no-mtls"},
                     {}, dir.path() / "agent.log");
  REQUIRE(wait_for_port(port, 10s));
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  auto r = call(client, AsyncTarget{"127.0.0.1", port, false, ""}, "GET", "/version");
  REQUIRE(r.response);
  CHECK(r.json()["results"]["supported_version"] == "2.6");
  child.terminate();
  CHECK(child.log().find("\"uuid\":\"cli-agent\"") != std::string::npos);
}
