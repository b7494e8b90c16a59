// What a store reports about itself for the services' /metrics: backend, connection pool, latency of
// store calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/service/metrics/histogram.hpp"

namespace kl::storage {

struct StoreStats {
  std::string backend;  // "sqlite" or "postgresql"; empty when the store does not report
  std::size_t pool_size = 0, connections_open = 0, connections_in_use = 0;
  metrics::HistogramSnapshot latency;  // seconds per store call
  std::uint64_t errors = 0;            // store calls that threw StorageError (not duplicates / not found)
};

}  // namespace kl::storage
