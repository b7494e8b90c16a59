#include "common/attest/quote/failure.hpp"

#include <cstdio>
#include <regex>
#include <stdexcept>

namespace kl {

std::string_view component_name(Component c) {
  switch (c) {
    case Component::quote_validation: return "qoute_validation";  // sic: Keylime's spelling
    case Component::pcr_validation: return "pcr_validation";
    case Component::measured_boot: return "measured_boot";
    case Component::ima: return "ima";
    case Component::internal: return "internal";
    case Component::tee_attestation: return "tee_attestation";
    case Component::default_: return "default";
  }
  return "default";
}

// ---------------------------------------------------------------- SeverityPolicy

struct SeverityPolicy::Data {
  std::vector<std::string> labels;
  std::vector<std::pair<std::regex, std::string>> rules;
};

std::shared_ptr<const SeverityPolicy::Data> SeverityPolicy::build(std::vector<std::string> labels,
                                                                 const std::vector<Rule>& rules) {
  if (labels.empty()) throw std::invalid_argument("severity_labels must not be empty");
  if (rules.empty()) throw std::invalid_argument("severity_policy must not be empty");
  auto d = std::make_shared<SeverityPolicy::Data>();
  d->labels = std::move(labels);
  for (const auto& r : rules) {
    try {
      d->rules.emplace_back(std::regex(r.event_id_regex, std::regex::ECMAScript), r.severity_label);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("severity_policy: bad event_id regex '" + r.event_id_regex + "': " + e.what());
    }
  }
  return d;
}

SeverityPolicy::SeverityPolicy() {
  // Built once: the default policy is immutable and shared by every Failure.
  static const std::shared_ptr<const Data> defaults =
      build({"info", "notice", "warning", "error", "critical", "alert", "emergency"}, {{".*", "emergency"}});
  d_ = defaults;
}

SeverityPolicy::SeverityPolicy(std::vector<std::string> labels, std::vector<Rule> rules)
    : d_(build(std::move(labels), rules)) {}

SeverityLabel SeverityPolicy::max_label() const {
  return {d_->labels.back(), static_cast<int>(d_->labels.size()) - 1};
}

SeverityLabel SeverityPolicy::label_for(std::string_view event_id) const {
  const std::string id(event_id);
  for (const auto& [re, label] : d_->rules) {
    if (!std::regex_match(id, re)) continue;
    for (std::size_t i = 0; i < d_->labels.size(); ++i)
      if (d_->labels[i] == label) return {label, static_cast<int>(i)};
    return max_label();  // unknown label: Keylime defaults to the maximum
  }
  return max_label();
}

// ---------------------------------------------------------------- Event

namespace {

// Python json.dumps defaults: ", " / ": " separators, ensure_ascii (non-ASCII as \uXXXX, surrogate
// pairs above the BMP).
void py_escape(const std::string& s, std::string& out) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = c;
    std::size_t len = 1;
    if (c >= 0x80) {
      if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
      else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
      else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
      else { cp = 0xFFFD; len = 1; }
      if (len > 1) {
        if (i + len > s.size()) { cp = 0xFFFD; len = 1; }
        else for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      }
    }
    i += len;
    char buf[16];
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp < 0x10000)) {
      if (cp == 0x7F) { out += static_cast<char>(cp); continue; }
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else if (cp >= 0x10000) {
      std::uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      out += buf;
    } else {
      out += static_cast<char>(cp);
    }
  }
  out += '"';
}

void py_dump(const nlohmann::json& j, std::string& out) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        py_escape(it.key(), out);
        out += ": ";
        py_dump(it.value(), out);
      }
      out += '}';
      break;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& v : j) {
        if (!first) out += ", ";
        first = false;
        py_dump(v, out);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::string: py_escape(j.get<std::string>(), out); break;
    case nlohmann::json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; break;
    case nlohmann::json::value_t::null: out += "null"; break;
    default: out += j.dump(); break;  // numbers
  }
}

}  // namespace

std::string Event::context_text() const {
  std::string out;
  py_dump(context, out);
  return out;
}

// ---------------------------------------------------------------- Failure

Failure::Failure(Component component, std::vector<std::string> sub_components, SeverityPolicy policy)
    : component_(component), sub_components_(std::move(sub_components)), policy_(std::move(policy)) {}

void Failure::add_event(std::string_view id, nlohmann::json context, bool recoverable,
                        const std::vector<std::string>& sub_components) {
  Event e;
  e.component = std::string(component_name(component_));
  e.event_id = e.component;
  for (const auto& s : sub_components_) e.event_id += "." + s;
  for (const auto& s : sub_components) e.event_id += "." + s;
  e.event_id += ".";
  e.event_id += id;
  if (context.is_string()) context = nlohmann::json{{"message", context.get<std::string>()}};
  e.context = std::move(context);
  e.recoverable = recoverable;
  e.severity_label = recoverable ? policy_.label_for(e.event_id) : policy_.max_label();
  if (!recoverable) recoverable_ = false;
  events_.push_back(std::move(e));
}

void Failure::merge(const Failure& other) {
  if (!other.recoverable_) recoverable_ = false;
  events_.insert(events_.end(), other.events_.begin(), other.events_.end());
}

void Failure::apply_severity_policy(const SeverityPolicy& policy) {
  policy_ = policy;
  for (auto& e : events_) e.severity_label = e.recoverable ? policy_.label_for(e.event_id) : policy_.max_label();
}

std::vector<std::string> Failure::event_ids() const {
  std::vector<std::string> ids;
  ids.reserve(events_.size());
  for (const auto& e : events_) ids.push_back(e.event_id);
  return ids;
}

bool Failure::has_event(std::string_view event_id) const {
  for (const auto& e : events_)
    if (e.event_id == event_id) return true;
  return false;
}

const Event* Failure::highest_severity_event() const {
  // Keylime keeps the first event of the highest level (a later event replaces it only if strictly
  // higher), also across merges; scanning the ordered list gives the same answer.
  const Event* best = nullptr;
  for (const auto& e : events_)
    if (!best || e.severity_label.level > best->severity_label.level) best = &e;
  return best;
}

std::optional<SeverityLabel> Failure::highest_severity() const {
  const Event* e = highest_severity_event();
  if (!e) return std::nullopt;
  return e->severity_label;
}

}  // namespace kl
