// What both services count for /metrics (requests by action and status) and the families they share:
// the store's figures (backend, pool, latency) and the request counts.
#pragma once

#include <chrono>

#include "common/service/metrics/exposition.hpp"
#include "common/service/storage/store_stats.hpp"

namespace kl::metrics {

// Owned by each service object; handlers reach it through their ServiceContext.
struct ServiceMetrics {
  LabelledCounter requests{512};  // {action, status code}
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  std::uint64_t requests_with(const std::string& action, int code) const;
};

// keylime_db_info{backend}, keylime_db_pool_size, keylime_db_connections{state="open"|"in_use"},
// keylime_db_operation_duration_seconds (histogram), keylime_db_errors_total.
void write_store_stats(Exposition& out, const storage::StoreStats& s);

// "requests by action and status code" from a LabelledCounter keyed {action, code}, as
// keylime_http_requests_total{action,code}.
// Also keylime_process_start_time_seconds.
void write_requests(Exposition& out, const ServiceMetrics& m);

}  // namespace kl::metrics
