#include "registrar/registrar_service.hpp"

#include <chrono>

#include "common/service/http/json_response.hpp"
#include "common/service/api/agent_id.hpp"
#include "registrar/metrics_handler.hpp"
#include "registrar/routes.hpp"

namespace kl::registrar {

RegistrarService::RegistrarService(RegistrarSettings settings, std::unique_ptr<storage::RegistrarStore> store,
                                   ek::TrustStore tpm_cert_store, std::shared_ptr<spdlog::logger> log,
                                   std::unique_ptr<SurrogateVerifier> surrogates)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      tpm_cert_store_(std::make_shared<const ek::TrustStore>(std::move(tpm_cert_store))),
      log_(std::move(log)),
      surrogates_(std::move(surrogates)) {
  if (settings_.metrics_port != 0) {
    // Optional: a listener that cannot bind is logged, and the service runs without it.
    try {
      metrics_listener_ = std::make_unique<metrics::MetricsListener>(settings_.ip, settings_.metrics_port,
                                                                     [this] { return metrics_text(); });
      log_->info("Serving GET /metrics on plain HTTP {}:{}", settings_.ip, metrics_listener_->port());
    } catch (const std::exception& e) {
      log_->error("cannot start the metrics listener on {}:{}: {}", settings_.ip, settings_.metrics_port, e.what());
    }
  }
  const SurrogateSettings& s = settings_.surrogates;
  if (!surrogates_ && s.enabled) surrogates_ = std::make_unique<SurrogateVerifier>(s);
  if (!s.enabled) {
    log_->info("snp_surrogates = off: SEV-SNP / Azure HCL reports in place of an EK certificate are refused");
    return;
  }
  for (const auto& w : surrogates_->warnings()) log_->warn("snp_cert_store: {}", w);
  if (surrogates_->trusted_products().empty())
    log_->warn("snp_cert_store {} holds no pinned AMD ARK (<Product>/ark.pem): every SEV-SNP report will be refused",
               s.cert_store.string());
  log_->info("EK-certificate surrogates: SEV-SNP / Azure HCL reports checked with AMD certificates from {}{}, policy {}",
             s.cert_store.string(), s.kds ? " and KDS " + s.kds_url : " (offline)",
             s.policy_file.empty() ? std::string("built-in defaults") : s.policy_file.string());
}

std::shared_ptr<const ek::TrustStore> RegistrarService::current_tpm_cert_store() const {
  std::lock_guard lk(tpm_mu_);
  return tpm_cert_store_;
}

std::string RegistrarService::metrics_text() {
  const auto tpm_store = current_tpm_cert_store();
  ServiceContext ctx{settings_, *store_, *tpm_store, *log_, locks_, &metrics_, surrogates_.get()};
  return render_metrics(ctx);
}

std::uint16_t RegistrarService::metrics_port() const { return metrics_listener_ ? metrics_listener_->port() : 0; }

http::Response RegistrarService::handle(const http::Request& req) {
  const auto start = std::chrono::steady_clock::now();
  // SIGHUP may swap the trust store: this request keeps the one it started with.
  const auto tpm_store = current_tpm_cert_store();
  ServiceContext ctx{settings_, *store_, *tpm_store, *log_, locks_, &metrics_, surrogates_.get()};
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
