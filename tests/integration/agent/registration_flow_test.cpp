// register_and_activate and the kl_test_agent CLI over real HTTP, against a minimal registrar written here
// from wire-contract §2.3-§2.5 (the project's registrar has its own tests; this one checks the agent side).
#include <catch2/catch.hpp>

#include <mutex>
#include <set>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/tpm/make_credential.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "support/cert_issue.hpp"
#include "support/process.hpp"
#include "support/swtpm.hpp"

using namespace kl::testing;

namespace {

struct Seen {
  std::string method, path, content_type;
  bool has_content_type = false;
  nlohmann::json body;
};

class MiniRegistrar {
 public:
  MiniRegistrar() : server_(options(), [this](const kl::http::Request& r) { return handle(r); }) { server_.start(); }
  std::uint16_t port() const { return server_.bound_ports().at(0); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  bool active(const std::string& id) {
    std::lock_guard lock(mu_);
    return active_.count(id) > 0;
  }
  int refuse_registration_with = 0;   // e.g. 403

 private:
  static kl::http::ServerOptions options() {
    kl::http::ServerOptions o;
    o.listeners.push_back(kl::http::ListenerConfig{"127.0.0.1", 0, std::nullopt});
    return o;
  }

  kl::http::Response handle(const kl::http::Request& r) {
    std::lock_guard lock(mu_);
    Seen s{r.method, r.path, "", false, nlohmann::json::parse(r.body, nullptr, false)};
    if (const auto* ct = r.header("content-type")) {
      s.has_content_type = true;
      s.content_type = *ct;
    }
    seen_.push_back(s);
    // /v{ver}/agents/{id}[/activate]
    std::vector<std::string> parts;
    for (std::size_t pos = 1, next; pos <= r.path.size(); pos = next + 1) {
      next = r.path.find('/', pos);
      if (next == std::string::npos) next = r.path.size();
      parts.push_back(r.path.substr(pos, next - pos));
    }
    if (parts.size() < 3 || parts[1] != "agents" || s.body.is_discarded()) return kl::http::empty_status(400);
    const std::string& id = parts[2];
    if (r.method == "POST" && parts.size() == 3) {
      if (refuse_registration_with) return kl::http::json_envelope(refuse_registration_with, {}, "refused");
      kl::tpm::PublicArea ek;
      if (s.body.contains("ek_tpm")) {
        ek = kl::tpm::parse_tpm2b_public(*kl::base64_decode(s.body["ek_tpm"].get<std::string>()));
      } else {
        // Python 6.7 sends only the certificate: derive a default-template EK from its key (as old registrars did).
        auto cert = cert_from_der(*kl::base64_decode(s.body["ekcert"].get<std::string>()));
        ek = kl::tpm::parse_tpm2b_public(
            kl::tpm::marshal_tpm2b_public(kl::tpm::tpmt_from_key(X509_get0_pubkey(cert.get()), true)));
      }
      const auto ak = kl::tpm::parse_tpm2b_public(*kl::base64_decode(s.body["aik_tpm"].get<std::string>()));
      const std::string challenge = kl::tpm::random_challenge();
      keys_[id] = kl::base64_encode(kl::as_bytes(challenge));
      const auto blob = kl::tpm::make_credential(ek, kl::tpm::name_of(ak), kl::as_bytes(challenge));
      return kl::http::json_envelope(200, {{"blob", kl::base64_encode(blob)}});
    }
    if (r.method == "PUT" && (parts.size() == 3 || (parts.size() == 4 && parts[3] == "activate"))) {
      auto it = keys_.find(id);
      if (it == keys_.end()) return kl::http::json_envelope(404, {}, "Agent with ID '" + id + "' not found");
      const std::string expected = kl::hex_encode(
          kl::crypto::hmac(kl::crypto::HashAlg::sha384, kl::as_bytes(it->second), kl::as_bytes(id)));
      if (!s.body.contains("auth_tag") || s.body["auth_tag"] != expected)
        return kl::http::json_envelope(400, {}, "Auth tag does not match");
      active_.insert(id);
      return kl::http::json_envelope(200);
    }
    return kl::http::empty_status(405);
  }

  std::mutex mu_;
  std::vector<Seen> seen_;
  std::map<std::string, std::string> keys_;
  std::set<std::string> active_;
  kl::http::Server server_;   // last: stopped (destroyed) before the state its handler uses
};

RegisterOptions opts(const std::string& id, RegisterOptions::Style style, const std::string& api) {
  RegisterOptions o;
  o.agent_id = id;
  o.style = style;
  o.api_version = api;
  return o;
}

}  // namespace

TEST_CASE("register_and_activate, rust style, software agent", "[agent][registration]") {
  MiniRegistrar reg;
  kl::http::Client client("127.0.0.1", reg.port());
  SoftwareAgent agent;
  const auto out = register_and_activate(client, agent, opts("agent-rust-1", RegisterOptions::Style::rust, "2.6"));
  INFO(to_json(out).dump());
  CHECK(out.ok());
  CHECK(out.register_status == 200);
  CHECK(out.activate_status == 200);
  CHECK(out.error.empty());
  CHECK(out.activate_reply == nlohmann::json{{"code", 200}, {"status", "Success"}, {"results", nlohmann::json::object()}});
  CHECK(reg.active("agent-rust-1"));
  const auto seen = reg.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].path == "/v2.6/agents/agent-rust-1");
  CHECK(seen[0].content_type == "application/json");
  CHECK(seen[1].method == "PUT");
  CHECK(seen[1].path == "/v2.6/agents/agent-rust-1");
  CHECK(seen[1].content_type == "application/json");
  CHECK(seen[1].body.size() == 1);
  CHECK(seen[1].body["auth_tag"].get<std::string>().size() == 96);
}

TEST_CASE("register_and_activate, python 6.7 style: no Content-Type, /activate", "[agent][registration]") {
  MiniRegistrar reg;
  kl::http::Client client("127.0.0.1", reg.port());
  SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);
  auto ca = make_test_ca("EK CA");
  agent.issue_ek_certificate(ca.key.get(), ca.cert.get());
  const auto out = register_and_activate(client, agent, opts("agent-py-1", RegisterOptions::Style::python_6_7, "2.1"));
  INFO(to_json(out).dump());
  CHECK(out.ok());
  const auto seen = reg.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].path == "/v2.1/agents/agent-py-1");
  CHECK_FALSE(seen[0].has_content_type);
  CHECK_FALSE(seen[0].body.contains("ek_tpm"));
  CHECK(seen[1].path == "/v2.1/agents/agent-py-1/activate");
  CHECK_FALSE(seen[1].has_content_type);
}

TEST_CASE("register_and_activate stops on a refused registration", "[agent][registration]") {
  MiniRegistrar reg;
  reg.refuse_registration_with = 403;
  kl::http::Client client("127.0.0.1", reg.port());
  SoftwareAgent agent;
  const auto out = register_and_activate(client, agent, opts("agent-refused", RegisterOptions::Style::rust, "2.6"));
  CHECK_FALSE(out.ok());
  CHECK(out.register_status == 403);
  CHECK(out.register_reply["status"] == "refused");
  CHECK(out.activate_status == 0);
  CHECK(out.error.find("403") != std::string::npos);
  CHECK(reg.seen().size() == 1);
}

TEST_CASE("register_and_activate with a swtpm agent, RSA and ECC EKs", "[agent][registration][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  for (bool ecc : {false, true}) {
    INFO((ecc ? "ecc" : "rsa"));
    Swtpm tpm(Swtpm::Options{ecc, true});
    TpmAgent agent(tpm.tcti(), ecc ? TpmAgent::EkAlg::ecc_p256 : TpmAgent::EkAlg::rsa2048);
    MiniRegistrar reg;
    kl::http::Client client("127.0.0.1", reg.port());
    const std::string id = ecc ? "tpm-ecc" : "tpm-rsa";
    const auto out = register_and_activate(client, agent, opts(id, RegisterOptions::Style::rust, "2.6"));
    INFO(to_json(out).dump());
    CHECK(out.ok());
    CHECK(reg.active(id));
  }
}

TEST_CASE("kl_test_agent register prints the outcome and exits 0", "[agent][cli]") {
  const std::filesystem::path exe = std::filesystem::path(KL_BINARY_DIR) / "tests" / "kl_test_agent";
  if (!std::filesystem::exists(exe)) {
    WARN("kl_test_agent not built (cmake --build ... --target kl_test_agent): skipped");
    return;
  }
  MiniRegistrar reg;
  const std::string registrar = "127.0.0.1:" + std::to_string(reg.port());
  SECTION("software agent") {
    const auto r = run_command({exe.string(), "register", "--registrar", registrar, "--uuid", "cli-sw", "--software"});
    INFO(r.output);
    CHECK(r.status == 0);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["ok"] == true);
    CHECK(j["activate_status"] == 200);
    CHECK(reg.active("cli-sw"));
  }
  SECTION("swtpm agent, python style") {
    if (!Swtpm::available()) return;
    Swtpm tpm;
    const auto r = run_command({exe.string(), "register", "--registrar", registrar, "--uuid", "cli-tpm", "--tcti",
                                tpm.tcti(), "--style", "python"});
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(reg.seen().at(0).path == "/v2.1/agents/cli-tpm");
    CHECK(reg.active("cli-tpm"));
  }
  SECTION("usage errors exit 2") {
    CHECK(run_command({exe.string(), "register", "--registrar", registrar}).status == 2);
    CHECK(run_command({exe.string(), "frobnicate"}).status == 2);
    const auto r = run_command({exe.string(), "register", "--registrar", "nohostport", "--uuid", "x", "--software"});
    CHECK(r.status == 2);
    CHECK(r.output.find("HOST:PORT") != std::string::npos);
  }
  SECTION("refused registration exits 1") {
    reg.refuse_registration_with = 400;
    const auto r = run_command({exe.string(), "register", "--registrar", registrar, "--uuid", "cli-no", "--software"});
    CHECK(r.status == 1);
    CHECK(nlohmann::json::parse(r.output)["register_status"] == 400);
  }
}
