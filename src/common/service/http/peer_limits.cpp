#include "common/service/http/peer_limits.hpp"

#include <algorithm>

namespace kl::http {
namespace {
constexpr std::size_t kPruneAbove = 4096;  // peers tracked before idle entries are swept
}

bool PeerLimits::acquire_connection(const std::string& peer) {
  std::lock_guard lock(mu_);
  if (peers_.size() > kPruneAbove) prune_locked(Clock::now());
  Entry& e = peers_[peer];
  if (cfg_.max_connections_per_peer != 0 && e.connections >= cfg_.max_connections_per_peer) return false;
  ++e.connections;
  return true;
}

void PeerLimits::release_connection(const std::string& peer) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  // Without a rate limit there is nothing left to remember about an idle peer.
  if (it->second.connections == 0 && cfg_.max_requests_per_second_per_peer <= 0) peers_.erase(it);
}

bool PeerLimits::allow_request(const std::string& peer, Clock::time_point now) {
  const double rate = cfg_.max_requests_per_second_per_peer;
  if (rate <= 0) return true;
  const double burst = 2 * rate;
  std::lock_guard lock(mu_);
  Entry& e = peers_[peer];
  if (e.tokens < 0) {
    e.tokens = burst;
  } else {
    const double elapsed = std::chrono::duration<double>(now - e.last).count();
    e.tokens = std::min(burst, e.tokens + std::max(0.0, elapsed) * rate);
  }
  e.last = now;
  if (e.tokens < 1) return false;
  e.tokens -= 1;
  return true;
}

void PeerLimits::prune_locked(Clock::time_point now) {
  const double rate = cfg_.max_requests_per_second_per_peer;
  for (auto it = peers_.begin(); it != peers_.end();) {
    const Entry& e = it->second;
    // An idle peer whose bucket has refilled is indistinguishable from a new one.
    bool refilled = rate <= 0 || e.tokens < 0 ||
                    e.tokens + std::chrono::duration<double>(now - e.last).count() * rate >= 2 * rate;
    if (e.connections == 0 && refilled) it = peers_.erase(it);
    else ++it;
  }
}

std::size_t PeerLimits::connections(const std::string& peer) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(peer);
  return it == peers_.end() ? 0 : it->second.connections;
}

std::size_t PeerLimits::tracked_peers() const {
  std::lock_guard lock(mu_);
  return peers_.size();
}

}  // namespace kl::http
