// Shared set-up of the in-process verifier integration tests: the verifier core (store + event loop + async
// client + poller + tenant API) in the test process, test agents on real mTLS sockets (software TPM), a real
// SQLite file. Header-only.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "support/tenant_add_body.hpp"
#include "agent/agent_server.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "integration/verifier/deployment.hpp"
#include "verifier/poller.hpp"
#include "verifier/verifier_service.hpp"

namespace kl::itest {




inline std::pair<std::string, std::string> rsa_keypair_pem() {
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
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  // What the verifier logged (warnings and above), one line per message.
  std::string log_text() const {
    std::string out;
    for (const auto& l : ring->last_formatted()) out += l;
    return out;
  }

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
    log->sinks().push_back(ring);
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
    json b = kl::testing::tenant_add_body(kl::base64_encode(identity.ak_tpm2b_public()), server->port(),
                                          server->mtls_cert_pem());
    b["v"] = v_b64;
    b["revocation_key"] = revocation_key;
    b["accept_tpm_hash_algs"] = {"sha512", "sha384", "sha256"};
    b["accept_tpm_signing_algs"] = {"ecschnorr", "rsassa", "ecdsa"};
    return b;
  }
};

inline long long count_of(Verifier& v, const std::string& id) {
  const json s = v.show(id);
  return s.is_null() ? -1 : s["attestation_count"].get<long long>();
}


}  // namespace kl::itest
