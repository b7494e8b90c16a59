#include "registrar/registrar_service.hpp"

#include <chrono>

#include "common/service/http/json_response.hpp"
#include "common/service/api/agent_id.hpp"
#include "registrar/routes.hpp"

namespace kl::registrar {

RegistrarService::RegistrarService(RegistrarSettings settings, std::unique_ptr<storage::RegistrarStore> store,
                                   ek::TrustStore tpm_cert_store, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      tpm_cert_store_(std::make_shared<const ek::TrustStore>(std::move(tpm_cert_store))),
      log_(std::move(log)) {}

http::Response RegistrarService::handle(const http::Request& req) {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<const ek::TrustStore> tpm_store;
  {
    std::lock_guard lk(tpm_mu_);
    tpm_store = tpm_cert_store_;
  }
  ServiceContext ctx{settings_, *store_, *tpm_store, *log_, locks_};
  http::Response resp;
  try {
    resp = dispatch(ctx, req);
  } catch (const std::exception& e) {
    log_->error("{} {}: unhandled error: {}", printable_for_log(req.method), printable_for_log(req.path), e.what());
    resp = http::empty_status(500, "Internal Server Error");
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  log_->info("{} {} {} -> {} ({:.2f} ms)", req.remote_address, printable_for_log(req.method, 16),
             printable_for_log(req.path), resp.status,
             static_cast<double>(us.count()) / 1000.0);
  return resp;
}

void RegistrarService::replace_tpm_cert_store(ek::TrustStore fresh) {
  auto next = std::make_shared<const ek::TrustStore>(std::move(fresh));
  std::lock_guard lk(tpm_mu_);
  tpm_cert_store_ = std::move(next);
}

}  // namespace kl::registrar
