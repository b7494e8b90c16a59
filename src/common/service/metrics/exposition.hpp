// Prometheus text exposition format (version 0.0.4): a writer for the services' GET /metrics and a strict
// parser (used by tests and by anything that scrapes us).
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/service/metrics/histogram.hpp"

namespace kl::metrics {

inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::vector<std::pair<std::string, std::string>>;

// Each family is written once, with its # HELP and # TYPE lines, all its samples together.
class Exposition {
 public:
  struct Sample {
    Labels labels;
    double value;
  };
  void counter(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void counter(const std::string& name, const std::string& help, double value) { counter(name, help, {{{}, value}}); }
  void gauge(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void gauge(const std::string& name, const std::string& help, double value) { gauge(name, help, {{{}, value}}); }
  // Cumulative _bucket{le=...} series (+Inf included), _sum and _count.
  void histogram(const std::string& name, const std::string& help, const HistogramSnapshot& h);
  const std::string& text() const { return out_; }

 private:
  void family(const std::string& name, const std::string& type, const std::string& help);
  void sample(const std::string& name, const Labels& labels, double value);
  std::string out_;
};

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A parsed scrape: every sample by its series key `name{l1="v1",l2="v2"}` (labels in the order written,
// values unescaped; no braces without labels), and each family's declared type.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  // The sample's value; throws std::out_of_range naming the key if absent.
  double at(const std::string& key) const;
  bool has(const std::string& key) const { return samples.count(key) != 0; }
};
// Throws ParseError (with the line number) on anything that is not valid exposition text.
Scrape parse_exposition(const std::string& text);

}  // namespace kl::metrics
