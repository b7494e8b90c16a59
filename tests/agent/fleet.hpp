// Many software agents served from ONE process for the scale benchmark: agent i listens on its own loopback
// address (127.1.x.y, port `port` or an ephemeral one) and has its own software EK + AK and SoftwareTpm.
// All listeners belong to one kl::http::Server; a request is routed to its agent by its Host header
// ("ip:port"), which every HTTP/1.1 client (our verifier, tornado) sends.
// One RSA payload key and one self-signed TLS certificate are shared by all agents: generating 10,000 RSA keys
// would take minutes, and neither affects what the verifier measures.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/agent_server.hpp"
#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "support/temp_dir.hpp"

namespace kl::testing {

struct FleetOptions {
  std::size_t agents = 100;
  std::string uuid_prefix = "fleet-";       // agent i: uuid_prefix + zero-padded i (8 digits)
  std::uint16_t port = 0;                   // 0: an ephemeral port per agent
  unsigned second_octet = 1;                // addresses 127.<second_octet>.<i/250>.<i%250+1>
  bool mtls = false;                        // TLS with one shared self-signed cert
  std::string trusted_client_ca_file;       // with mtls: client certs must chain to it
  unsigned threads = 1;                     // server io threads
};

struct FleetAgent {
  std::string uuid;
  std::string address;
  std::uint16_t port = 0;                   // valid after Fleet::start()
  std::unique_ptr<SoftwareAgent> identity;
  std::unique_ptr<SoftwareTpm> tpm;
  std::unique_ptr<AgentApi> api;
};

class Fleet {
 public:
  explicit Fleet(FleetOptions opts);        // creates the identities (fast: ECC keys)
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Raises RLIMIT_NOFILE if needed (two descriptors per agent), binds every listener, serves.
  void start();
  void stop();

  std::size_t size() const { return agents_.size(); }
  FleetAgent& agent(std::size_t i) { return *agents_.at(i); }
  const std::string& mtls_cert_pem() const { return cert_pem_; }   // "" without mtls
  std::string mtls_cert_or_disabled() const { return opts_.mtls ? cert_pem_ : "disabled"; }
  std::uint64_t quotes_served() const;
  std::uint64_t requests_unrouted() const { return unrouted_.load(); }

 private:
  FleetOptions opts_;
  std::vector<std::unique_ptr<FleetAgent>> agents_;
  std::unordered_map<std::string, FleetAgent*> by_host_;   // "ip:port" -> agent (filled by start())
  std::shared_ptr<kl::ossl::Pkey> payload_key_;
  TempDir dir_;
  std::string cert_pem_;
  struct Running;
  std::unique_ptr<Running> server_;
  std::atomic<std::uint64_t> unrouted_{0};
};

}  // namespace kl::testing
