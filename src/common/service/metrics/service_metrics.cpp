#include "common/service/metrics/service_metrics.hpp"

namespace kl::metrics {

void write_store_stats(Exposition& out, const storage::StoreStats& s) {
  out.gauge("keylime_db_info", "Database backend in use (value is always 1)",
            {{{{"backend", s.backend.empty() ? "unknown" : s.backend}}, 1}});
  out.gauge("keylime_db_pool_size", "Database connections in this process's pool (SQLite: one connection)",
            static_cast<double>(s.pool_size));
  out.gauge("keylime_db_connections", "Database connections of this process by state",
            {{{{"state", "open"}}, static_cast<double>(s.connections_open)},
             {{{"state", "in_use"}}, static_cast<double>(s.connections_in_use)}});
  out.histogram("keylime_db_operation_duration_seconds",
                "Time of one store call (a query or a transaction), including waiting for a pooled connection",
                s.latency);
  out.counter("keylime_db_errors_total", "Store calls that failed with a database error", static_cast<double>(s.errors));
}

std::uint64_t ServiceMetrics::requests_with(const std::string& action, int code) const {
  const auto v = requests.values();
  const auto it = v.find({action, std::to_string(code)});
  return it == v.end() ? 0 : it->second;
}

void write_requests(Exposition& out, const ServiceMetrics& m) {
  out.gauge("keylime_process_start_time_seconds", "Start time of the service, seconds since the epoch",
            static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(m.started.time_since_epoch()).count()));
  std::vector<Exposition::Sample> samples;
  for (const auto& [k, v] : m.requests.values())
    if (k.size() == 2) samples.push_back({{{"action", k[0]}, {"code", k[1]}}, static_cast<double>(v)});
  out.counter("keylime_http_requests_total", "Requests answered by a route, by upstream's action name and status code",
              samples);
}

}  // namespace kl::metrics
