// GET /metrics of the verifier: Prometheus text exposition (docs/metrics.md).
#pragma once
#include <string>

#include "common/service/http/message.hpp"
#include "common/service/metrics/exposition.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

struct PollerStats;

std::string render_metrics(ServiceContext& ctx);
http::Response handle_metrics(ServiceContext& ctx, const http::Request& req, const RouteParams& params);

// The poller's figures as metric families (quotes, lateness and verification-time histograms).
void write_poller_stats(metrics::Exposition& out, const PollerStats& s);

}  // namespace kl::verifier
