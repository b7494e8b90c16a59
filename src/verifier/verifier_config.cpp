#include "verifier/verifier_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/service/config/known_keys.hpp"
#include "common/service/storage/database_url.hpp"

namespace kl::verifier {

namespace {

const char* const kSection = "verifier";
const char* const kRevocations = "revocations";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string def(const std::string& key) {
  const auto& d = config::verifier_defaults();
  auto it = d.find(key);
  return it == d.end() ? std::string{} : it->second;
}

std::string get(const config::Config& c, const std::string& key) { return trim(c.get(kSection, key, def(key))); }

[[noreturn]] void bad_value(const char* section, const std::string& key, const std::string& value,
                            const std::string& expected) {
  throw config::ConfigError("invalid value '" + value + "' for [" + section + "] " + key + ": expected " + expected);
}

long long get_int(const config::Config& c, const std::string& key) {
  const std::string v = get(c, key);
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    bad_value(kSection, key, v, "an integer");
  }
}

double get_float(const config::Config& c, const std::string& key) {
  const std::string v = get(c, key);
  try {
    size_t used = 0;
    const double n = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(n)) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    bad_value(kSection, key, v, "a number");
  }
}

bool get_bool(const config::Config& c, const char* section, const std::string& key, const std::string& fallback) {
  const std::string v = lower(trim(c.get(section, key, fallback)));
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off") return false;
  bad_value(section, key, v, "True or False");
}

std::uint16_t port_value(const char* section, const std::string& key, long long v) {
  if (v < 0 || v > 65535) bad_value(section, key, std::to_string(v), "a TCP port number (0-65535)");
  return static_cast<std::uint16_t>(v);
}

std::filesystem::path under(const std::filesystem::path& base, const std::string& value) {
  return (base / value).lexically_normal();
}

}  // namespace

const std::set<std::string>& known_verifier_keys() {
  static const std::set<std::string> keys = [] {
    auto k = config::key_names(config::verifier_defaults());
    k.insert("metrics_port");  // ours: plain-HTTP /metrics listener, 0 = none
    for (const auto& t : http::server_tuning_keys()) k.insert(t);  // ours
    k.insert({"run_as", "log_format"});  // ours, read by main.cpp (daemon runner)
    return k;
  }();
  return keys;
}

const std::set<std::string>& known_revocations_keys() {
  static const std::set<std::string> keys = config::key_names(config::revocations_defaults());
  return keys;
}

double retry_delay(bool exponential, double base, int attempt) {
  if (exponential && base > 1) return std::pow(base, attempt);
  return std::fabs(base);
}

VerifierSettings load_settings(const config::Config& c, const std::map<std::string, std::string>& env) {
  VerifierSettings s;
  for (const auto& k : c.unknown_keys(kSection, known_verifier_keys()))
    s.warnings.push_back("unknown key '" + k + "' in [verifier] is ignored");
  for (const auto& k : c.unknown_keys(kRevocations, known_revocations_keys()))
    s.warnings.push_back("unknown key '" + k + "' in [revocations] is ignored");

  s.keylime_dir = config::keylime_dir(env);
  s.uuid = get(c, "uuid");
  if (s.uuid.empty() || s.uuid.size() > 80) bad_value(kSection, "uuid", s.uuid, "a non-empty id of at most 80 characters");
  s.ip = get(c, "ip");
  if (s.ip.empty()) bad_value(kSection, "ip", "", "an IP address or host name");
  s.port = port_value(kSection, "port", get_int(c, "port"));
  s.registrar_ip = get(c, "registrar_ip");
  if (s.registrar_ip.empty()) bad_value(kSection, "registrar_ip", "", "an IP address or host name");
  s.registrar_port = port_value(kSection, "registrar_port", get_int(c, "registrar_port"));
  s.enable_agent_mtls = get_bool(c, kSection, "enable_agent_mtls", def("enable_agent_mtls"));

  s.tls_dir_setting = get(c, "tls_dir");
  if (s.tls_dir_setting.empty()) bad_value(kSection, "tls_dir", "", "'generate', 'default' or a directory");
  s.generate_tls = s.tls_dir_setting == "generate";
  if (s.generate_tls || s.tls_dir_setting == "default")
    s.tls_dir = s.keylime_dir / "cv_ca";
  else
    s.tls_dir = under(s.keylime_dir, s.tls_dir_setting);
  for (const auto& san : c.get_list(kSection, "cert_subject_alternative_names", {}))
    if (!trim(san).empty()) s.cert_subject_alternative_names.push_back(trim(san));

  struct FileKey { const char* key; const char* default_name; std::filesystem::path* out; };
  for (const FileKey& f : {FileKey{"server_cert", "server-cert.crt", &s.server_cert},
                           FileKey{"server_key", "server-private.pem", &s.server_key},
                           FileKey{"client_cert", "client-cert.crt", &s.client_cert},
                           FileKey{"client_key", "client-private.pem", &s.client_key}}) {
    const std::string v = get(c, f.key);
    if (v.empty()) bad_value(kSection, f.key, "", "'default' or a file name");
    if (s.generate_tls && v != "default") bad_value(kSection, f.key, v, "'default' when tls_dir = generate");
    *f.out = v == "default" ? s.tls_dir / f.default_name : under(s.tls_dir, v);
  }
  s.server_key_password = c.get(kSection, "server_key_password", "");
  s.client_key_password = c.get(kSection, "client_key_password", "");

  auto ca_list = [&](const char* key, std::vector<std::filesystem::path>& out, bool& all) {
    const std::string v = get(c, key);
    if (s.generate_tls && v != "default") bad_value(kSection, key, v, "'default' when tls_dir = generate");
    if (v == "default") {
      out.push_back(s.keylime_dir / "cv_ca" / "cacert.crt");
    } else if (v == "all") {
      all = true;
    } else if (v.empty()) {
      bad_value(kSection, key, "", "'default', 'all' or a list of CA files");
    } else {
      for (const auto& f : c.get_list(kSection, key, {}))
        if (!trim(f).empty()) out.push_back(under(s.tls_dir, trim(f)));
    }
  };
  ca_list("trusted_client_ca", s.trusted_client_ca, s.client_ca_all);
  ca_list("trusted_server_ca", s.trusted_server_ca, s.server_ca_all);

  s.database_url = get(c, "database_url");
  if (s.database_url.empty()) bad_value(kSection, "database_url", "", "'sqlite' or a database URL");
  try {
    s.database_url = storage::with_pool_size(s.database_url, get(c, "database_pool_sz_ovfl"));
  } catch (const std::exception&) {
    bad_value(kSection, "database_pool_sz_ovfl", get(c, "database_pool_sz_ovfl"), "'<pool size>,<overflow>'");
  }
  {
    const std::string mp = trim(c.get(kSection, "metrics_port", "0"));
    try {
      size_t used = 0;
      const long long n = std::stoll(mp, &used);
      if (used != mp.size()) throw std::invalid_argument(mp);
      s.metrics_port = port_value(kSection, "metrics_port", n);
    } catch (const config::ConfigError&) {
      throw;
    } catch (const std::exception&) {
      bad_value(kSection, "metrics_port", mp, "a TCP port number (0-65535)");
    }
  }

  const long long num_workers = get_int(c, "num_workers");
  const long long max_workers = get_int(c, "max_workers");
  if (num_workers < 0) bad_value(kSection, "num_workers", std::to_string(num_workers), "a non-negative number");
  if (max_workers < 0) bad_value(kSection, "max_workers", std::to_string(max_workers), "a non-negative number");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  unsigned w = num_workers == 0 ? cores : static_cast<unsigned>(std::min<long long>(num_workers, 1024));
  if (max_workers > 0) w = std::min<unsigned>(w, static_cast<unsigned>(std::min<long long>(max_workers, 1024)));
  s.worker_threads = std::max(1u, w);

  s.exponential_backoff = get_bool(c, kSection, "exponential_backoff", def("exponential_backoff"));
  s.retry_interval = get_float(c, "retry_interval");
  if (s.retry_interval < 0) bad_value(kSection, "retry_interval", get(c, "retry_interval"), "a non-negative number");
  s.max_retries = static_cast<int>(get_int(c, "max_retries"));
  if (s.max_retries < 0) bad_value(kSection, "max_retries", get(c, "max_retries"), "a non-negative integer");
  s.quote_interval = get_float(c, "quote_interval");
  if (s.quote_interval < 0) bad_value(kSection, "quote_interval", get(c, "quote_interval"), "a non-negative number");
  const long long upload = get_int(c, "max_upload_size");
  if (upload <= 0) bad_value(kSection, "max_upload_size", std::to_string(upload), "a positive number of bytes");
  s.max_upload_size = static_cast<std::size_t>(upload);
  s.server_tuning = http::read_server_tuning(c, kSection);
  s.request_timeout = get_float(c, "request_timeout");
  if (s.request_timeout <= 0) bad_value(kSection, "request_timeout", get(c, "request_timeout"), "a positive number");

  s.measured_boot_policy_name = get(c, "measured_boot_policy_name");
  const std::string mbe = lower(get(c, "measured_boot_evaluate"));
  if (mbe == "once") s.measured_boot_evaluate = MeasuredBootEvaluate::once;
  else if (mbe == "always") s.measured_boot_evaluate = MeasuredBootEvaluate::always;
  else bad_value(kSection, "measured_boot_evaluate", mbe, "once or always");

  // Severity labels and rules (verification.md §6).
  for (const auto& l : c.get_list(kSection, "severity_labels",
                                   {"info", "notice", "warning", "error", "critical", "alert", "emergency"}))
    if (!trim(l).empty()) s.severity_labels.push_back(trim(l));
  if (s.severity_labels.empty()) bad_value(kSection, "severity_labels", get(c, "severity_labels"), "a non-empty list");
  const std::string policy_text = get(c, "severity_policy");
  try {
    const auto j = nlohmann::json::parse(policy_text);
    if (!j.is_array() || j.empty()) throw std::invalid_argument("not a list");
    for (const auto& r : j) s.severity_rules.push_back({r.at("event_id").get<std::string>(), r.at("severity_label").get<std::string>()});
    s.severity_policy = SeverityPolicy(s.severity_labels, s.severity_rules);
  } catch (const std::exception&) {
    bad_value(kSection, "severity_policy", policy_text,
              "a JSON list of {\"event_id\": <regex>, \"severity_label\": <label>} objects");
  }
  s.ignore_tomtou_errors = get_bool(c, kSection, "ignore_tomtou_errors", def("ignore_tomtou_errors"));
  s.require_allow_list_signatures =
      get_bool(c, kSection, "require_allow_list_signatures", def("require_allow_list_signatures"));

  const std::string mode = lower(get(c, "mode"));
  if (mode == "push") bad_value(kSection, "mode", mode, "pull (push mode / API 3.0 is not supported by this verifier)");
  if (mode != "pull") bad_value(kSection, "mode", mode, "pull");

  // [revocations]
  const auto& rd = config::revocations_defaults();
  s.revocations.notify_agents = false;
  for (const auto& m : c.get_list(kRevocations, "enabled_revocation_notifications", {"agent"})) {
    const std::string v = lower(trim(m));
    if (v == "agent") s.revocations.notify_agents = true;
    else if (v == "webhook") s.revocations.notify_webhook = true;
    else if (v == "zeromq") s.revocations.zeromq_requested = true;
    else if (!v.empty()) bad_value(kRevocations, "enabled_revocation_notifications", v, "a list of agent, webhook, zeromq");
  }
  s.revocations.zmq_ip = trim(c.get(kRevocations, "zmq_ip", rd.at("zmq_ip")));
  const std::string zp = trim(c.get(kRevocations, "zmq_port", rd.at("zmq_port")));
  try {
    s.revocations.zmq_port = port_value(kRevocations, "zmq_port", std::stoll(zp));
  } catch (const config::ConfigError&) {
    throw;
  } catch (const std::exception&) {
    bad_value(kRevocations, "zmq_port", zp, "a TCP port number (0-65535)");
  }
  s.revocations.webhook_url = trim(c.get(kRevocations, "webhook_url", ""));
  if (s.revocations.notify_webhook) {
    if (s.revocations.webhook_url.empty())
      s.warnings.push_back("webhook revocation notifications enabled but [revocations] webhook_url is empty: none are sent");
    else if (s.revocations.webhook_url.rfind("http://", 0) != 0 && s.revocations.webhook_url.rfind("https://", 0) != 0)
      bad_value(kRevocations, "webhook_url", s.revocations.webhook_url, "an http:// or https:// URL");
  }
  return s;
}

}  // namespace kl::verifier
