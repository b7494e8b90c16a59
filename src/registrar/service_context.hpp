// What every registrar handler works with: settings, storage, the TPM vendor trust store, the logger.
#pragma once
#include <array>
#include <functional>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

#include "common/attest/ek/trust_store.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_config.hpp"

namespace kl::registrar {

// Serialises check-validate-commit per agent id (as upstream's per-agent locks) without one global lock:
// ids hash onto a fixed set of mutexes, so memory stays bounded however many agents register.
class AgentLocks {
 public:
  std::mutex& for_agent(const std::string& agent_id) {
    return locks_[std::hash<std::string>{}(agent_id) % locks_.size()];
  }

 private:
  std::array<std::mutex, 64> locks_;
};

struct ServiceContext {
  const RegistrarSettings& settings;
  storage::RegistrarStore& store;
  const ek::TrustStore& tpm_cert_store;
  spdlog::logger& log;
  AgentLocks& locks;
};

// Parameters captured from the matched route.
struct RouteParams {
  std::string agent_id;       // ":agent_id" path segment, if the route has one
  bool has_agent_id = false;
  int major_version = 0;      // 2 or 3 for versioned routes, 0 for /version
};

}  // namespace kl::registrar
