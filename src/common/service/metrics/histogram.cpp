#include "common/service/metrics/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace kl::metrics {

void LabelledCounter::inc(const Key& label_values, std::uint64_t n) {
  std::lock_guard lk(mu_);
  auto it = v_.find(label_values);
  if (it == v_.end()) {
    Key k = label_values;
    if (v_.size() >= max_) std::fill(k.begin(), k.end(), std::string("other"));
    it = v_.emplace(std::move(k), 0).first;
  }
  it->second += n;
}

std::map<LabelledCounter::Key, std::uint64_t> LabelledCounter::values() const {
  std::lock_guard lk(mu_);
  return v_;
}

std::uint64_t HistogramSnapshot::count() const {
  std::uint64_t n = 0;
  for (auto c : counts) n += c;
  return n;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]()) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v: "le" semantics
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  if (v > 0 && std::isfinite(v))
    sum_micro_.fetch_add(static_cast<std::uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) s.counts[i] = counts_[i].load(std::memory_order_relaxed);
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

std::vector<double> Histogram::latency_bounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace kl::metrics
