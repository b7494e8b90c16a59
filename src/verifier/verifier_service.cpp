#include "verifier/verifier_service.hpp"

#include <chrono>

#include "common/service/http/json_response.hpp"
#include "verifier/request_checks.hpp"
#include "verifier/metrics_handler.hpp"
#include "verifier/routes.hpp"

namespace kl::verifier {

VerifierService::VerifierService(const VerifierSettings& settings, storage::VerifierStore& store,
                                 AgentScheduler* scheduler, RegistrarLookupFn registrar,
                                 std::shared_ptr<spdlog::logger> log)
    : settings_(settings), store_(store), scheduler_(scheduler), registrar_(std::move(registrar)), log_(std::move(log)) {
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
}

std::string VerifierService::metrics_text() {
  ServiceContext ctx{settings_, store_, *log_, locks_, scheduler_, registrar_, &metrics_};
  return render_metrics(ctx);
}

std::uint16_t VerifierService::metrics_port() const { return metrics_listener_ ? metrics_listener_->port() : 0; }

http::Response VerifierService::handle(const http::Request& req) {
  const auto start = std::chrono::steady_clock::now();
  ServiceContext ctx{settings_, store_, *log_, locks_, scheduler_, registrar_, &metrics_};
  http::Response resp;
  try {
    resp = dispatch(ctx, req);
  } catch (const std::exception& e) {
    log_->error("{} {}: unhandled error: {}", printable_for_log(req.method),
                printable_for_log(req.path), e.what());
    resp = http::empty_status(500, "Internal Server Error");
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  log_->info("{} {} {} -> {} ({:.2f} ms)", req.remote_address, printable_for_log(req.method, 16),
             printable_for_log(req.path), resp.status, static_cast<double>(us.count()) / 1000.0);
  return resp;
}

}  // namespace kl::verifier
