// Per-peer-address admission for the HTTP server: a cap on open connections and a token bucket on requests,
// so that one misbehaving client cannot take every connection slot or flood the handlers while others wait.
// Thread-safe; no Beast/Asio here so it can be unit-tested directly.
#pragma once
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace kl::http {

struct PeerLimitsConfig {
  // 0 disables the limit, which is the library default: an in-process server hosting many simulated agents
  // (tests/agent/fleet) legitimately sees thousands of connections from the one verifier address. The daemons
  // take their (generous) defaults from ServerTuning (server_tuning.hpp).
  std::size_t max_connections_per_peer = 0;
  double max_requests_per_second_per_peer = 0;  // sustained; bursts of twice this are allowed
};

class PeerLimits {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PeerLimits(PeerLimitsConfig cfg) : cfg_(cfg) {}

  // A connection from `peer` is opening: false when it already holds max_connections_per_peer.
  // Every true must be paired with release_connection().
  bool acquire_connection(const std::string& peer);
  void release_connection(const std::string& peer);
  // One request from `peer`: false when its bucket is empty (answer 429).
  bool allow_request(const std::string& peer) { return allow_request(peer, Clock::now()); }
  bool allow_request(const std::string& peer, Clock::time_point now);

  std::size_t connections(const std::string& peer) const;
  std::size_t tracked_peers() const;

 private:
  struct Entry {
    std::size_t connections = 0;
    double tokens = -1;  // < 0: not yet initialised (full bucket)
    Clock::time_point last{};
  };
  void prune_locked(Clock::time_point now);

  PeerLimitsConfig cfg_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> peers_;
};

}  // namespace kl::http
