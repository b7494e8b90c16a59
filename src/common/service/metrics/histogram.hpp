// Thread-safe counters and fixed-bucket histograms for Prometheus-style metrics. Lock-free on the
// hot path (relaxed atomics): a scrape may see a count one observation ahead of its sum, which the
// exposition format tolerates.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kl::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// A counter per tuple of label values (e.g. per failure event id, per action and status code). The number
// of distinct tuples is capped so an attacker-influenced label cannot grow memory without bound: beyond
// the cap, new tuples are counted under {"other", ...}.
class LabelledCounter {
 public:
  using Key = std::vector<std::string>;
  explicit LabelledCounter(std::size_t max_values = 256) : max_(max_values) {}
  void inc(const Key& label_values, std::uint64_t n = 1);
  std::map<Key, std::uint64_t> values() const;

 private:
  std::size_t max_;
  mutable std::mutex mu_;
  std::map<Key, std::uint64_t> v_;
};

struct HistogramSnapshot {
  std::vector<double> bounds;          // upper bounds, ascending (the +Inf bucket is implicit)
  std::vector<std::uint64_t> counts;   // per bucket, NOT cumulative; size bounds.size() + 1 (last: > last bound)
  double sum = 0;
  std::uint64_t count() const;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  HistogramSnapshot snapshot() const;

  // Latency buckets in seconds, 100 us .. 10 s.
  static std::vector<double> latency_bounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_micro_{0};  // sum in millionths of the unit: atomic without a CAS loop
};

}  // namespace kl::metrics
