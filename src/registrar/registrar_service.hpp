// The registrar as a request -> response function: owns storage, trust store and locks; logs one line
// per request. main.cpp puts it behind kl::http::Server; tests can call handle() directly.
#pragma once
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/attest/ek/trust_store.hpp"
#include "common/service/http/message.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

class RegistrarService {
 public:
  RegistrarService(RegistrarSettings settings, std::unique_ptr<storage::RegistrarStore> store,
                   ek::TrustStore tpm_cert_store, std::shared_ptr<spdlog::logger> log);
  // Never throws: an unexpected exception becomes 500 with an empty body (logged).
  http::Response handle(const http::Request& req);
  const RegistrarSettings& settings() const { return settings_; }
  // SIGHUP: requests already running finish with the store they started with; later ones use `fresh`.
  void replace_tpm_cert_store(ek::TrustStore fresh);

 private:
  RegistrarSettings settings_;
  std::unique_ptr<storage::RegistrarStore> store_;
  mutable std::mutex tpm_mu_;
  std::shared_ptr<const ek::TrustStore> tpm_cert_store_;
  std::shared_ptr<spdlog::logger> log_;
  AgentLocks locks_;
};

}  // namespace kl::registrar
