// The verifier's tenant API as a request -> response function: owns storage and locks, logs one line per request.
// main.cpp puts it behind kl::http::Server; tests call handle() directly.
#pragma once
#include <memory>

#include <spdlog/spdlog.h>

#include "common/service/http/message.hpp"
#include "common/service/metrics/listener.hpp"
#include "common/service/metrics/service_metrics.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "verifier/agent_scheduler.hpp"
#include "verifier/registrar_client.hpp"
#include "verifier/service_context.hpp"
#include "verifier/verifier_config.hpp"

namespace kl::verifier {

class VerifierService {
 public:
  // `store` and `scheduler` must outlive the service; `scheduler` may be null, `registrar` empty.
  VerifierService(const VerifierSettings& settings, storage::VerifierStore& store, AgentScheduler* scheduler,
                  RegistrarLookupFn registrar, std::shared_ptr<spdlog::logger> log);
  // Never throws: an unexpected exception becomes 500 with an empty body (logged).
  http::Response handle(const http::Request& req);
  // The /metrics exposition text (also served on settings.metrics_port when that is set).
  std::string metrics_text();
  std::uint16_t metrics_port() const;  // of the plain metrics listener; 0 if none

 private:
  const VerifierSettings& settings_;
  storage::VerifierStore& store_;
  AgentScheduler* scheduler_;
  RegistrarLookupFn registrar_;
  std::shared_ptr<spdlog::logger> log_;
  AgentLocks locks_;
  metrics::ServiceMetrics metrics_;
  std::unique_ptr<metrics::MetricsListener> metrics_listener_;  // declared last: stops first
};

}  // namespace kl::verifier
