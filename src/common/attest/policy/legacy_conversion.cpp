#include "common/attest/policy/legacy_conversion.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/attest/parse_error.hpp"

namespace kl::policy {

namespace {
bool py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view strip(std::string_view s) {
  while (!s.empty() && py_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && py_space(s.back())) s.remove_suffix(1);
  return s;
}

// str.splitlines() for the separators that occur in text files.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') {
      out.push_back(text.substr(start, i - start));
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

RuntimePolicy legacy_base(std::string timestamp) {
  RuntimePolicy p = empty_runtime_policy();
  p.meta.timestamp = std::move(timestamp);
  p.meta.generator = static_cast<int>(Generator::LegacyAllowList);
  return p;
}

// Python truthiness of a JSON value (upstream copies a key only when it is truthy).
bool truthy(const nlohmann::json& j) {
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();  // json::empty() is false for strings
  if (j.is_array() || j.is_object()) return !j.empty();
  if (j.is_number()) return j.get<double>() != 0.0;
  return true;
}

// Copies the truthy non-meta keys of `src` over the empty policy, re-reading through the model.
RuntimePolicy migrate(const nlohmann::json& src, RuntimePolicy base, const char* digests_key) {
  nlohmann::json merged = to_json(base);
  for (auto& [key, value] : merged.items()) {
    if (key == "meta") continue;
    const char* from = key == "digests" ? digests_key : key.c_str();
    if (src.contains(from) && truthy(src[from])) value = src[from];
  }
  RuntimePolicy out = runtime_policy_from_json(merged);
  out.meta = base.meta;
  return out;
}
}  // namespace

RuntimePolicy convert_flat_allowlist(std::string_view text, std::string timestamp) {
  RuntimePolicy p = legacy_base(std::move(timestamp));
  for (auto raw : split_lines(text)) {
    auto line = strip(raw);
    if (line.empty()) continue;
    std::size_t sep = 0;
    while (sep < line.size() && !py_space(line[sep])) ++sep;
    if (sep == line.size()) continue;  // not "<hash> <path>"
    std::string hash(line.substr(0, sep));
    std::string_view path = strip(line.substr(sep));  // split(None, 1) drops the separating run
    constexpr std::string_view kKeyring = "%keyring:";
    if (path.substr(0, kKeyring.size()) == kKeyring) p.keyrings[std::string(path.substr(kKeyring.size()))].push_back(hash);
    else p.digests[std::string(path)].push_back(hash);
  }
  return p;
}

RuntimePolicy convert_json_allowlist(const nlohmann::json& allowlist, std::string timestamp) {
  if (!allowlist.is_object()) throw ParseError("allowlist is not a JSON object");
  if (!allowlist.contains("hashes") || !truthy(allowlist["hashes"])) {
    if (allowlist.contains("digests") && truthy(allowlist["digests"]))
      throw ParseError("allowlist is already a runtime policy");
    throw ParseError("allowlist does not contain a valid digest list");
  }
  return migrate(allowlist, legacy_base(std::move(timestamp)), "hashes");
}

RuntimePolicy convert_legacy_allowlist(std::string_view text, std::string timestamp) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return convert_flat_allowlist(text, std::move(timestamp));
  return convert_json_allowlist(j, std::move(timestamp));
}

void append_exclude_list(std::string_view text, RuntimePolicy& policy) {
  for (auto raw : split_lines(text)) {
    auto line = strip(raw);
    if (line.empty() || line.front() == '#') continue;
    policy.excludes.emplace_back(line);
  }
}

RuntimePolicy upgrade_runtime_policy(const nlohmann::json& old_policy, std::string timestamp) {
  if (!old_policy.is_object()) throw ParseError("runtime policy is not a JSON object");
  std::int64_t version = 0;
  if (old_policy.contains("meta") && old_policy["meta"].is_object() && old_policy["meta"].contains("version") &&
      old_policy["meta"]["version"].is_number_integer())
    version = old_policy["meta"]["version"].get<std::int64_t>();
  if (version >= kRuntimePolicyCurrentVersion) return runtime_policy_from_json(old_policy);
  RuntimePolicy base = empty_runtime_policy();
  base.meta.timestamp = std::move(timestamp);
  base.meta.generator = static_cast<int>(Generator::CompatibleAllowList);
  return migrate(old_policy, std::move(base), "digests");
}

std::string python_now_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us));
  return buf;
}

}  // namespace kl::policy
