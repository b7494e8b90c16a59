// Shared set-up of the verifier integration tests that run the real binaries: keylime_verifier and
// keylime_registrar processes on free ports with their own KEYLIME_DIR, a generated cv_ca, the tenant's mTLS
// client, and the tenant's POST /agents body. Header-only; every TU includes it once.
#pragma once
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent_identity.hpp"
#include "support/tenant_add_body.hpp"
#include "agent/agent_server.hpp"
#include "agent/registration.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/http/client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace kl::itest {

using namespace std::chrono_literals;
using nlohmann::json;

inline const std::string kZero64(64, '0');

template <class F>
bool eventually(F&& pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

inline std::filesystem::path binary(const std::string& name) { return std::filesystem::path(KL_BINARY_DIR) / name; }

struct Deployment {
  kl::testing::TempDir dir;
  std::uint16_t vport = kl::testing::free_tcp_port();
  std::uint16_t rport = kl::testing::free_tcp_port();
  std::uint16_t rtls = kl::testing::free_tcp_port();
  std::unique_ptr<kl::testing::ChildProcess> verifier, registrar;

  std::filesystem::path kl_dir() const { return dir.path() / "kl"; }
  std::filesystem::path cv_ca() const { return kl_dir() / "cv_ca"; }
  std::string cacert() const { return (cv_ca() / "cacert.crt").string(); }
  std::map<std::string, std::string> env() const {
    return {{"KEYLIME_DIR", kl_dir().string()}, {"KEYLIME_TENANT_CONFIG", (dir.path() / "tenant.conf").string()}};
  }

  // `extra_verifier_conf`: more [verifier] lines (e.g. "measured_boot_policy_name = example\n").
  explicit Deployment(const std::string& extra_verifier_conf = "") {
    std::filesystem::create_directories(kl_dir());
    std::filesystem::create_directories(dir.path() / "tpm_cert_store");
    std::ofstream(dir.path() / "verifier.conf")
        << "[verifier]\nip = 127.0.0.1\nport = " << vport << "\nregistrar_port = " << rtls
        << "\nquote_interval = 0.3\nretry_interval = 0.2\nmax_retries = 2\nexponential_backoff = False\n"
           "request_timeout = 3\n"
        << extra_verifier_conf;
    std::ofstream(dir.path() / "registrar.conf") << "[registrar]\nip = 127.0.0.1\nport = " << rport
                                                 << "\ntls_port = " << rtls << "\nek_cert_chain_check = off\n";
    std::ofstream(dir.path() / "tenant.conf") << "[tenant]\ntpm_cert_store = " << (dir.path() / "tpm_cert_store").string() << "\n";
    start_verifier();   // generates cv_ca, which the registrar (tls_dir = default) then uses
    registrar = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_registrar").string(), "-c", (dir.path() / "registrar.conf").string()},
        env(), dir.path() / "registrar.log");
    if (!kl::testing::wait_for_port(rtls, std::chrono::seconds(20)))
      throw std::runtime_error("registrar did not start:\n" + registrar->log());
  }

  void start_verifier() {
    verifier = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{binary("keylime_verifier").string(), "-c", (dir.path() / "verifier.conf").string()},
        env(), dir.path() / "verifier.log");
    if (!kl::testing::wait_for_port(vport, std::chrono::seconds(20)))
      throw std::runtime_error("verifier did not start:\n" + verifier->log());
  }

  kl::http::Client tenant() const {
    kl::http::TlsClientConfig t;
    t.cert_file = (cv_ca() / "client-cert.crt").string();
    t.key_file = (cv_ca() / "client-private.pem").string();
    t.ca_files = {cacert()};
    return kl::http::Client("127.0.0.1", vport, kl::http::ClientOptions{t, 10000ms});
  }

  // Registers and activates `id` at the registrar, contact port `port`.
  kl::testing::RegistrationOutcome register_agent(kl::testing::AgentIdentity& id, const std::string& uuid,
                                                  const kl::testing::AgentServer& server) const {
    kl::http::Client reg("127.0.0.1", rport);
    kl::testing::RegisterOptions ro;
    ro.agent_id = uuid;
    ro.contact_port = server.port();
    ro.mtls_cert = server.mtls_cert_pem();
    return kl::testing::register_and_activate(reg, id, ro);
  }
};

// The tenant's POST /v2.x/agents body (wire-contract §3.2), every key present.
inline json add_body(const kl::testing::AgentIdentity& id, std::uint16_t port, const std::string& mtls_cert,
                     const std::string& tpm_policy = kl::testing::pcr15_zero_policy()) {
  return kl::testing::tenant_add_body(kl::base64_encode(id.ak_tpm2b_public()), port, mtls_cert, tpm_policy);
}

inline json agent_status(kl::http::Client& c, const std::string& id) {
  const auto r = c.request("GET", "/v2.6/agents/" + id);
  if (r.status != 200) return nullptr;
  return json::parse(r.body)["results"];
}

inline long long attestation_count(kl::http::Client& c, const std::string& id) {
  const json s = agent_status(c, id);
  return s.is_null() ? -1 : s["attestation_count"].get<long long>();
}

}  // namespace kl::itest
