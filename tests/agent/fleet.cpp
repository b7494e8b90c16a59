#include "agent/fleet.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <openssl/pem.h>
#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "common/service/tls/cert_builder.hpp"

namespace kl::testing {

struct Fleet::Running {
  std::unique_ptr<kl::http::Server> server;
};

namespace {

std::string pubkey_pem_of(EVP_PKEY* key) {
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) throw std::runtime_error("cannot write public key PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

void raise_fd_limit(rlim_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= wanted) return;
  rlimit want = rl;
  want.rlim_cur = wanted;
  if (want.rlim_max < wanted) want.rlim_max = wanted;   // needs CAP_SYS_RESOURCE; falls back below
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

Fleet::Fleet(FleetOptions opts) : opts_(std::move(opts)) {
  if (opts_.agents > 250u * 256u) throw std::invalid_argument("Fleet: at most 64000 agents");
  payload_key_ = std::make_shared<kl::ossl::Pkey>(EVP_RSA_gen(2048));
  if (!*payload_key_) throw std::runtime_error("Fleet: payload key generation failed");
  const auto binding = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(pubkey_pem_of(payload_key_->get())));
  agents_.reserve(opts_.agents);
  for (std::size_t i = 0; i < opts_.agents; ++i) {
    auto a = std::make_unique<FleetAgent>();
    char num[24];
    std::snprintf(num, sizeof num, "%08zu", i);
    a->uuid = opts_.uuid_prefix + num;
    a->address = "127." + std::to_string(opts_.second_octet) + "." + std::to_string(i / 250) + "." +
                 std::to_string(i % 250 + 1);
    a->identity = std::make_unique<SoftwareAgent>(SoftwareAgent::EkAlg::ecc_p256);
    a->tpm = std::make_unique<SoftwareTpm>(a->identity->ak_key(), a->identity->ak_tpm2b_public());
    a->tpm->pcr_extend(16, binding);   // nothing else touches PCR 16 of a fleet agent
    AgentApi::Config cfg;
    cfg.uuid = a->uuid;
    SoftwareTpm* st = a->tpm.get();
    cfg.quote = [st](kl::ByteView nonce, const std::vector<unsigned>& pcrs) { return st->quote(nonce, pcrs); };
    // The identity keeps its TPM2B_PUBLIC copies; AgentApi only borrows them for its constructor.
    const kl::Bytes ak = a->identity->ak_tpm2b_public(), ek = a->identity->ek_tpm2b_public();
    cfg.ak_tpm2b_public = ak;
    cfg.ek_tpm2b_public = ek;
    cfg.payload_key = payload_key_;
    cfg.require_client_cert = opts_.mtls && !opts_.trusted_client_ca_file.empty();
    a->api = std::make_unique<AgentApi>(std::move(cfg));
    agents_.push_back(std::move(a));
  }
  if (opts_.mtls) {
    kl::ossl::Pkey key(EVP_EC_gen("P-256"));
    kl::tls::CertSpec spec;
    spec.common_name = "keylime-fleet-agent";
    auto cert = kl::tls::issue_certificate(spec, key.get(), nullptr, nullptr);
    cert_pem_ = kl::tls::to_pem(cert.get());
    kl::tls::write_file(dir_.path() / "server-cert.crt", cert_pem_, 0644, false);
    kl::tls::write_file(dir_.path() / "server-private.pem", kl::tls::to_pem(key.get()), 0600, false);
  }
}

Fleet::~Fleet() { stop(); }

void Fleet::start() {
  if (server_) return;
  raise_fd_limit(static_cast<rlim_t>(agents_.size() * 2 + 1024));
  kl::http::ServerOptions so;
  so.threads = opts_.threads;
  for (auto& a : agents_) {
    kl::http::ListenerConfig l;
    l.address = a->address;
    l.port = a->port ? a->port : opts_.port;
    if (opts_.mtls) {
      kl::http::TlsServerConfig t;
      t.cert_file = (dir_.path() / "server-cert.crt").string();
      t.key_file = (dir_.path() / "server-private.pem").string();
      if (!opts_.trusted_client_ca_file.empty()) t.trusted_client_ca_files = {opts_.trusted_client_ca_file};
      l.tls = t;
    }
    so.listeners.push_back(std::move(l));
  }
  // by_host_ is written before the server starts and only read by handlers afterwards.
  auto r = std::make_unique<Running>();
  r->server = std::make_unique<kl::http::Server>(so, [this](const kl::http::Request& req) {
    const std::string* host = req.header("host");
    if (host) {
      auto it = by_host_.find(*host);
      if (it != by_host_.end()) return it->second->api->handle(req);
    }
    unrouted_.fetch_add(1);
    return kl::http::json_envelope(404, nlohmann::json::object(), "No agent at this Host");
  });
  // Server::start() binds and serves at once, so agents with a known port (fixed, or bound by an earlier
  // start) are routed before it; ephemeral ports are only known after it, when nobody can know them yet.
  by_host_.clear();
  std::vector<std::size_t> unbound;
  for (std::size_t i = 0; i < agents_.size(); ++i) {
    auto& a = agents_[i];
    if (opts_.port != 0) a->port = opts_.port;
    if (a->port != 0) {
      by_host_[a->address + ":" + std::to_string(a->port)] = a.get();
    } else {
      unbound.push_back(i);
    }
  }
  r->server->start();
  if (!unbound.empty()) {
    auto ports = r->server->bound_ports();
    for (std::size_t i : unbound) {
      agents_[i]->port = ports.at(i);
      by_host_[agents_[i]->address + ":" + std::to_string(ports[i])] = agents_[i].get();
    }
  }
  server_ = std::move(r);
}

void Fleet::stop() {
  if (!server_) return;
  server_->server->stop();
  server_.reset();
}

std::uint64_t Fleet::quotes_served() const {
  std::uint64_t n = 0;
  for (const auto& a : agents_) n += a->api->quotes_served();
  return n;
}

}  // namespace kl::testing
