// What every verifier tenant-API handler works with.
#pragma once
#include <string>

#include <spdlog/spdlog.h>

#include "common/service/api/agent_locks.hpp"

#include "common/service/metrics/service_metrics.hpp"
#include "common/service/storage/verifier_store.hpp"
#include <array>
#include <functional>
#include <mutex>
#include "verifier/agent_scheduler.hpp"
#include "verifier/registrar_client.hpp"
#include "verifier/verifier_config.hpp"

namespace kl::verifier {

using api::AgentLocks;

struct ServiceContext {
  const VerifierSettings& settings;
  storage::VerifierStore& store;
  spdlog::logger& log;
  AgentLocks& locks;
  AgentScheduler* scheduler;          // null: nothing is polled (tests of the API alone)
  const RegistrarLookupFn& registrar; // empty: the tenant's ak_tpm / mtls_cert are taken as sent
  metrics::ServiceMetrics* metrics = nullptr;  // null: nothing is counted
};

struct RouteParams {
  std::string id;            // ":agent_id" or ":name" path segment
  std::string action;        // ":action" path segment (PUT /agents/:agent_id/:action)
  int major_version = 0;     // 2 or 3 for versioned routes, 0 for unversioned ones
  std::string version;       // the version segment without "v", e.g. "2.1" or "2"
};

}  // namespace kl::verifier
