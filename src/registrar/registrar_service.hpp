// The registrar as a request -> response function: owns storage, trust store and locks; logs one line
// per request. main.cpp puts it behind kl::http::Server; tests can call handle() directly.
#pragma once
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/attest/ek/trust_store.hpp"
#include "common/service/http/message.hpp"
#include "common/service/metrics/listener.hpp"
#include "common/service/metrics/service_metrics.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

class RegistrarService {
 public:
  // Builds the EK-certificate surrogate checker from settings.surrogates unless `surrogates` is given (tests).
  RegistrarService(RegistrarSettings settings, std::unique_ptr<storage::RegistrarStore> store,
                   ek::TrustStore tpm_cert_store, std::shared_ptr<spdlog::logger> log,
                   std::unique_ptr<SurrogateVerifier> surrogates = nullptr);
  // Never throws: an unexpected exception becomes 500 with an empty body (logged).
  http::Response handle(const http::Request& req);
  const RegistrarSettings& settings() const { return settings_; }
  // The /metrics exposition text (also served on settings.metrics_port when that is set).
  std::string metrics_text();
  // Port of the plain metrics listener; 0 if none.
  std::uint16_t metrics_port() const;
  // SIGHUP: requests already running finish with the store they started with; later ones use `fresh`.
  void replace_tpm_cert_store(ek::TrustStore fresh);

 private:
  RegistrarSettings settings_;
  std::unique_ptr<storage::RegistrarStore> store_;
  std::shared_ptr<const ek::TrustStore> current_tpm_cert_store() const;
  mutable std::mutex tpm_mu_;
  std::shared_ptr<const ek::TrustStore> tpm_cert_store_;
  std::shared_ptr<spdlog::logger> log_;
  AgentLocks locks_;
  std::unique_ptr<SurrogateVerifier> surrogates_;
  metrics::ServiceMetrics metrics_;
  std::unique_ptr<metrics::MetricsListener> metrics_listener_;  // declared last: stops first
};

}  // namespace kl::registrar
