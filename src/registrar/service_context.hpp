// What every registrar handler works with: settings, storage, the TPM vendor trust store, the logger.
#pragma once
#include <array>
#include <functional>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

#include "common/service/api/agent_id.hpp"
#include "common/service/api/agent_locks.hpp"
#include "common/service/api/strict_json.hpp"

#include "common/attest/ek/trust_store.hpp"
#include "common/service/metrics/service_metrics.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/surrogate_check.hpp"

namespace kl::registrar {

using api::AgentLocks;
using api::parse_json_strict;
using api::printable_for_log;
using api::valid_agent_id;

struct ServiceContext {
  const RegistrarSettings& settings;
  storage::RegistrarStore& store;
  const ek::TrustStore& tpm_cert_store;
  spdlog::logger& log;
  AgentLocks& locks;
  metrics::ServiceMetrics* metrics = nullptr;  // null: nothing is counted (tests of single handlers)
  const SurrogateVerifier* surrogates = nullptr;   // EK-certificate surrogate checks (nullptr: refused)
};

// Parameters captured from the matched route.
struct RouteParams {
  std::string agent_id;       // ":agent_id" path segment, if the route has one
  bool has_agent_id = false;
  int major_version = 0;      // 2 or 3 for versioned routes, 0 for /version
};

}  // namespace kl::registrar
