// The HTTP server's own limits as configuration keys of [registrar] / [verifier] (ours; upstream has none).
#pragma once
#include <chrono>
#include <set>
#include <string>

#include "common/service/http/server.hpp"

namespace kl::config {
class Config;
}

namespace kl::http {

struct ServerTuning {
  std::chrono::seconds request_timeout{60};  // server_request_timeout: slow/silent clients are closed after it
  // server_max_connections_per_peer, server_max_requests_per_second_per_peer. Upstream has no limits; these are
  // far above what an agent (register + activate once), a tenant or a fleet behind one NAT address sends.
  PeerLimitsConfig peer_limits{512, 10000.0};
  void apply(ServerOptions& opts) const {
    opts.idle_timeout = request_timeout;
    opts.peer_limits = peer_limits;
  }
};

// Key names read by read_server_tuning (for the services' known-key lists).
const std::set<std::string>& server_tuning_keys();
// Missing keys keep the defaults; a bad value throws config::ConfigError naming [section] key.
ServerTuning read_server_tuning(const config::Config& c, const std::string& section);

}  // namespace kl::http
