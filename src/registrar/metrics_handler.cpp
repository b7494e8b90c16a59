#include "registrar/metrics_handler.hpp"

#include "common/service/metrics/exposition.hpp"

namespace kl::registrar {

std::string render_metrics(ServiceContext& ctx) {
  metrics::Exposition out;
  if (ctx.metrics) {
    out.counter("keylime_registrar_registrations_total", "Agent registrations accepted (POST /agents answered 200)",
                static_cast<double>(ctx.metrics->requests_with("register_agent", 200)));
    out.counter("keylime_registrar_activations_total", "Agent activations accepted (answered 200)",
                static_cast<double>(ctx.metrics->requests_with("activate_agent", 200)));
    metrics::write_requests(out, *ctx.metrics);
  }
  out.gauge("keylime_registrar_agents", "Agents in the registrar's database", static_cast<double>(ctx.store.list_ids().size()));
  metrics::write_store_stats(out, ctx.store.stats());
  return out.text();
}

http::Response handle_metrics(ServiceContext& ctx, const http::Request&, const RouteParams&) {
  http::Response r;
  r.content_type = metrics::kContentType;
  r.body = render_metrics(ctx);
  return r;
}

}  // namespace kl::registrar
