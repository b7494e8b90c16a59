#include "verifier/metrics_handler.hpp"

#include <map>

#include "common/service/metrics/exposition.hpp"
#include "verifier/operational_state.hpp"
#include "verifier/poller.hpp"

namespace kl::verifier {

namespace {

// The poller keeps lateness in 10 ms buckets (bucket i: i*10 <= late < (i+1)*10 ms; the last one >= 10 s);
// re-bucketed here onto coarser Prometheus bounds. Sum taken at bucket midpoints.
metrics::HistogramSnapshot lateness_histogram(const std::vector<std::uint64_t>& b10) {
  metrics::HistogramSnapshot h;
  h.bounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  h.counts.assign(h.bounds.size() + 1, 0);
  for (std::size_t i = 0; i < b10.size(); ++i) {
    if (!b10[i]) continue;
    const bool open_ended = i + 1 == b10.size();
    const double upper = static_cast<double>(i + 1) * 0.01;
    std::size_t k = 0;
    while (k < h.bounds.size() && (open_ended || upper > h.bounds[k] + 1e-9)) ++k;
    h.counts[k] += b10[i];
    h.sum += static_cast<double>(b10[i]) * (static_cast<double>(i) + 0.5) * 0.01;
  }
  return h;
}

}  // namespace

void write_poller_stats(metrics::Exposition& out, const PollerStats& s) {
  out.gauge("keylime_verifier_polled_agents", "Agents the poller is currently polling", static_cast<double>(s.agents));
  out.counter("keylime_verifier_quotes_requested_total", "Quote requests sent to agents",
              static_cast<double>(s.quotes_requested));
  out.counter("keylime_verifier_quotes_verified_total", "Quote responses that passed verification",
              static_cast<double>(s.quotes_verified));
  out.counter("keylime_verifier_quotes_failed_total", "Quote rounds that failed verification",
              static_cast<double>(s.quotes_failed));
  std::vector<metrics::Exposition::Sample> by_event;
  for (const auto& [ev, n] : s.failures_by_event)
    by_event.push_back({{{"event_id", ev.empty() ? "none" : ev}}, static_cast<double>(n)});
  out.counter("keylime_verifier_attestation_failures_total",
              "Failed quote rounds by the highest-severity event id of the failure", by_event);
  out.counter("keylime_verifier_transport_errors_total", "Quote requests that got no usable answer (network, timeout)",
              static_cast<double>(s.transport_errors));
  out.histogram("keylime_verifier_poll_lateness_seconds", "How late a poll was sent after its timer was due",
                lateness_histogram(s.lateness_10ms));
  out.histogram("keylime_verifier_verification_duration_seconds", "Time to verify one quote response",
                s.verification_seconds);
}

std::string render_metrics(ServiceContext& ctx) {
  metrics::Exposition out;
  // Every state appears (0 when empty), so a dashboard's series do not come and go.
  std::map<int, std::size_t> by_state;
  for (int st = static_cast<int>(State::registered); st <= static_cast<int>(State::tenant_failed); ++st) by_state[st] = 0;
  for (const auto& [st, n] : ctx.store.count_by_state(ctx.settings.uuid)) by_state[st] += n;
  std::vector<metrics::Exposition::Sample> states;
  for (const auto& [st, n] : by_state)
    states.push_back({{{"state", std::string(state_name(st))}, {"code", std::to_string(st)}}, static_cast<double>(n)});
  out.gauge("keylime_verifier_agents", "Agents of this verifier_id by operational state", states);
  // The production scheduler is the Poller; tests may run the API without one.
  if (const auto* poller = dynamic_cast<const Poller*>(ctx.scheduler)) write_poller_stats(out, poller->stats());
  if (ctx.metrics) metrics::write_requests(out, *ctx.metrics);
  metrics::write_store_stats(out, ctx.store.stats());
  return out.text();
}

http::Response handle_metrics(ServiceContext& ctx, const http::Request&, const RouteParams&) {
  http::Response r;
  r.content_type = metrics::kContentType;
  r.body = render_metrics(ctx);
  return r;
}

}  // namespace kl::verifier
