// Typed verifier settings, read once from verifier.conf ([verifier] and [revocations], wire-contract §7.2).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/attest/quote/failure.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/server_tuning.hpp"

namespace kl::verifier {

enum class MeasuredBootEvaluate { once, always };

struct RevocationSettings {
  bool notify_agents = true;    // "agent" in enabled_revocation_notifications
  bool notify_webhook = false;  // "webhook"
  bool zeromq_requested = false;  // "zeromq": not supported; main() refuses to start with a clear message
  std::string zmq_ip = "127.0.0.1";
  std::uint16_t zmq_port = 8992;
  std::string webhook_url;
};

struct VerifierSettings {
  std::string uuid = "default";   // verifier_id
  std::string ip = "127.0.0.1";
  std::uint16_t port = 8881;
  std::string registrar_ip = "127.0.0.1";
  std::uint16_t registrar_port = 8891;
  bool enable_agent_mtls = true;
  std::filesystem::path keylime_dir = "/var/lib/keylime";

  // tls_dir as configured ("generate", "default" or a path) and resolved (§5.3); generate -> $KEYLIME_DIR/cv_ca.
  std::string tls_dir_setting = "generate";
  std::filesystem::path tls_dir;
  bool generate_tls = true;
  std::vector<std::string> cert_subject_alternative_names;
  std::filesystem::path server_cert, server_key, client_cert, client_key;
  std::string server_key_password, client_key_password;
  std::vector<std::filesystem::path> trusted_client_ca;   // empty + client_ca_all: nobody is admin
  bool client_ca_all = false;
  std::vector<std::filesystem::path> trusted_server_ca;   // registrar / agent CAs; empty + server_ca_all: no check
  bool server_ca_all = false;

  // With database_pool_sz_ovfl folded in as "?pool_size=N" for a PostgreSQL URL (storage/database_url.hpp).
  std::string database_url = "sqlite";
  // Our extension ([verifier] metrics_port): a plain-HTTP listener on `ip` serving only GET /metrics;
  // 0 (the default) = none (/metrics is then only on the TLS port, with mTLS).
  std::uint16_t metrics_port = 0;
  unsigned worker_threads = 2;    // verification workers, from num_workers (0 = cores) capped by max_workers
  bool exponential_backoff = true;
  double retry_interval = 2.0;    // seconds
  int max_retries = 5;
  double quote_interval = 2.0;    // seconds
  std::size_t max_upload_size = 104857600;
  http::ServerTuning server_tuning;   // server_request_timeout, server_max_*_per_peer (ours)
  double request_timeout = 60.0;  // seconds
  std::string measured_boot_policy_name = "accept-all";
  MeasuredBootEvaluate measured_boot_evaluate = MeasuredBootEvaluate::once;
  std::vector<std::string> severity_labels;
  std::vector<SeverityPolicy::Rule> severity_rules;
  SeverityPolicy severity_policy;  // built from the two above
  bool ignore_tomtou_errors = false;
  bool require_allow_list_signatures = false;
  RevocationSettings revocations;

  std::vector<std::string> warnings;   // non-fatal findings for the caller to log
};

// Keys read from [verifier] (the §7.2 template keys) and [revocations].
const std::set<std::string>& known_verifier_keys();
const std::set<std::string>& known_revocations_keys();

// Throws config::ConfigError naming "[verifier] <key>" / "[revocations] <key>" for a bad value; unknown keys are
// warnings. mode = push is refused (pull model only).
VerifierSettings load_settings(const config::Config& verifier, const std::map<std::string, std::string>& env);

// Upstream's retry_time (keylime/common/retry.py): base ** n when exponential and base > 1, else |base|. Seconds.
double retry_delay(bool exponential, double base, int attempt);

}  // namespace kl::verifier
