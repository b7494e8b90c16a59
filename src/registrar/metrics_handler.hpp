// GET /metrics of the registrar: Prometheus text exposition (docs/metrics.md).
#pragma once
#include <string>

#include "common/service/http/message.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

std::string render_metrics(ServiceContext& ctx);
http::Response handle_metrics(ServiceContext& ctx, const http::Request& req, const RouteParams& params);

}  // namespace kl::registrar
