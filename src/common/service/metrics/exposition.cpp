#include "common/service/metrics/exposition.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace kl::metrics {
namespace {

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool valid_metric_name(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  return true;
}

bool valid_label_name(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string series_key(const std::string& name, const Labels& labels) {
  if (labels.empty()) return name;
  std::string k = name + "{";
  for (size_t i = 0; i < labels.size(); ++i)
    k += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
  return k + "}";
}

}  // namespace

void Exposition::family(const std::string& name, const std::string& type, const std::string& help) {
  out_ += "# HELP " + name + " " + escape_help(help) + "\n# TYPE " + name + " " + type + "\n";
}

void Exposition::sample(const std::string& name, const Labels& labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i)
      out_ += (i ? "," : "") + labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
    out_ += '}';
  }
  out_ += ' ' + format_value(value) + '\n';
}

void Exposition::counter(const std::string& name, const std::string& help, const std::vector<Sample>& samples) {
  family(name, "counter", help);
  for (const auto& s : samples) sample(name, s.labels, s.value);
}

void Exposition::gauge(const std::string& name, const std::string& help, const std::vector<Sample>& samples) {
  family(name, "gauge", help);
  for (const auto& s : samples) sample(name, s.labels, s.value);
}

void Exposition::histogram(const std::string& name, const std::string& help, const HistogramSnapshot& h) {
  family(name, "histogram", help);
  std::uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cum += i < h.counts.size() ? h.counts[i] : 0;
    sample(name + "_bucket", {{"le", format_value(h.bounds[i])}}, static_cast<double>(cum));
  }
  cum += h.counts.size() > h.bounds.size() ? h.counts.back() : 0;
  sample(name + "_bucket", {{"le", "+Inf"}}, static_cast<double>(cum));
  sample(name + "_sum", {}, h.sum);
  sample(name + "_count", {}, static_cast<double>(cum));
}

double Scrape::at(const std::string& key) const {
  auto it = samples.find(key);
  if (it == samples.end()) throw std::out_of_range("no sample " + key);
  return it->second;
}

Scrape parse_exposition(const std::string& text) {
  Scrape out;
  size_t line_no = 0, pos = 0;
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto fail = [&](const std::string& why) -> ParseError {
      return ParseError("line " + std::to_string(line_no) + ": " + why);
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("# TYPE ", 0) == 0) {
        const std::string rest = line.substr(7);
        const auto sp = rest.find(' ');
        if (sp == std::string::npos) throw fail("TYPE without a type");
        const std::string name = rest.substr(0, sp), type = rest.substr(sp + 1);
        if (!valid_metric_name(name)) throw fail("bad metric name '" + name + "'");
        if (!kTypes.count(type)) throw fail("unknown type '" + type + "'");
        if (!out.types.emplace(name, type).second) throw fail("second TYPE line for " + name);
      } else if (line.rfind("# HELP ", 0) == 0) {
        if (!valid_metric_name(line.substr(7, line.find(' ', 7) - 7))) throw fail("bad metric name in HELP");
      }
      continue;  // other comments are allowed
    }
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    const std::string name = line.substr(0, i);
    if (!valid_metric_name(name)) throw fail("bad metric name '" + name + "'");
    Labels labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) throw fail("label without '='");
        const std::string lname = line.substr(i, eq - i);
        if (!valid_label_name(lname)) throw fail("bad label name '" + lname + "'");
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') throw fail("label value not quoted");
        ++i;
        std::string val;
        for (;;) {
          if (i >= line.size()) throw fail("unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) throw fail("dangling escape");
            const char e = line[i++];
            if (e == 'n') val += '\n';
            else if (e == '\\' || e == '"') val += e;
            else throw fail("bad escape in label value");
          } else {
            val += c;
          }
        }
        labels.emplace_back(lname, val);
        if (i < line.size() && line[i] == ',') ++i;
        else if (i < line.size() && line[i] != '}') throw fail("expected ',' or '}'");
      }
      if (i >= line.size()) throw fail("unterminated label set");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') throw fail("no value");
    while (i < line.size() && line[i] == ' ') ++i;
    const auto sp = line.find(' ', i);  // an optional timestamp may follow
    const std::string v = line.substr(i, sp == std::string::npos ? std::string::npos : sp - i);
    double value = 0;
    if (v == "+Inf") value = INFINITY;
    else if (v == "-Inf") value = -INFINITY;
    else if (v == "NaN") value = NAN;
    else {
      char* e = nullptr;
      value = std::strtod(v.c_str(), &e);
      if (v.empty() || e != v.c_str() + v.size()) throw fail("bad value '" + v + "'");
    }
    if (!out.samples.emplace(series_key(name, labels), value).second) throw fail("duplicate series " + name);
  }
  return out;
}

}  // namespace kl::metrics
