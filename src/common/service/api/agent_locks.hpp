// Serialises check-validate-commit per agent id (as upstream's per-agent locks) without one global lock:
// ids hash onto a fixed set of mutexes, so memory stays bounded however many agents there are.
#pragma once
#include <array>
#include <functional>
#include <mutex>
#include <string>

namespace kl::api {

class AgentLocks {
 public:
  std::mutex& for_agent(const std::string& agent_id) {
    return locks_[std::hash<std::string>{}(agent_id) % locks_.size()];
  }

 private:
  std::array<std::mutex, 64> locks_;
};

}  // namespace kl::api
