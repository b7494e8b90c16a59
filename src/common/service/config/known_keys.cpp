#include "common/service/config/known_keys.hpp"

// Defaults are upstream's template values (templates/2.6, spec §7.2/§7.3) so that a service started
// without a configuration file behaves as upstream's with the shipped one.
namespace kl::config {

const std::map<std::string, std::string>& registrar_defaults() {
  static const std::map<std::string, std::string> d{
      {"version", "2.6"},
      {"ip", "127.0.0.1"},
      {"port", "8890"},
      {"tls_port", "8891"},
      {"tls_dir", "default"},
      {"server_key", "default"},
      {"server_key_password", ""},
      {"server_cert", "default"},
      {"cert_subject_alternative_names", ""},
      {"trusted_client_ca", "default"},
      {"authorization_provider", "simple"},
      {"database_url", "sqlite"},
      {"database_pool_sz_ovfl", "5,10"},
      {"max_workers", "16"},
      {"auto_migrate_db", "True"},
      {"durable_attestation_import", ""},
      {"persistent_store_url", ""},
      {"transparency_log_url", ""},
      {"time_stamp_authority_url", ""},
      {"time_stamp_authority_certs_path", ""},
      {"persistent_store_format", "json"},
      {"persistent_store_encoding", ""},
      {"transparency_log_sign_algo", "sha256"},
      {"signed_attributes", "ek_tpm,aik_tpm,ekcert"},
      {"tpm_identity", "default"},
      {"malformed_cert_action", "warn"},
      {"max_upload_size", "104857600"},  // read by upstream's server, not in the template
  };
  return d;
}

const std::map<std::string, std::string>& verifier_defaults() {
  static const std::map<std::string, std::string> d{
      {"version", "2.6"},
      {"uuid", "default"},
      {"ip", "127.0.0.1"},
      {"port", "8881"},
      {"registrar_ip", "127.0.0.1"},
      {"registrar_port", "8891"},
      {"enable_agent_mtls", "True"},
      {"tls_dir", "generate"},
      {"server_key", "default"},
      {"server_key_password", ""},
      {"server_cert", "default"},
      {"cert_subject_alternative_names", ""},
      {"trusted_client_ca", "default"},
      {"client_key", "default"},
      {"client_key_password", ""},
      {"client_cert", "default"},
      {"trusted_server_ca", "default"},
      {"authorization_provider", "simple"},
      {"database_url", "sqlite"},
      {"database_pool_sz_ovfl", "5,10"},
      {"auto_migrate_db", "True"},
      {"num_workers", "0"},
      {"max_workers", "16"},
      {"exponential_backoff", "True"},
      {"retry_interval", "2"},
      {"max_retries", "5"},
      {"quote_interval", "2"},
      {"max_upload_size", "104857600"},
      {"request_timeout", "60.0"},
      {"measured_boot_policy_name", "accept-all"},
      {"measured_boot_imports", "[]"},
      {"measured_boot_evaluate", "once"},
      {"severity_labels", R"(["info", "notice", "warning", "error", "critical", "alert", "emergency"])"},
      {"severity_policy", R"([{"event_id": ".*", "severity_label" : "emergency"}])"},
      {"ignore_tomtou_errors", "False"},
      {"durable_attestation_import", ""},
      {"persistent_store_url", ""},
      {"transparency_log_url", ""},
      {"time_stamp_authority_url", ""},
      {"time_stamp_authority_certs_path", ""},
      {"persistent_store_format", "json"},
      {"persistent_store_encoding", ""},
      {"transparency_log_sign_algo", "sha256"},
      {"signed_attributes", ""},
      {"require_allow_list_signatures", "False"},
      {"mode", "pull"},
      {"challenge_lifetime", "1800"},
      {"verification_timeout", "0"},
      {"session_create_rate_limit_per_ip", "50"},
      {"session_create_rate_limit_window_ip", "60"},
      {"session_create_rate_limit_per_agent", "15"},
      {"session_create_rate_limit_window_agent", "60"},
      {"session_lifetime", "180"},
      {"extend_token_on_attestation", "True"},
      {"auto_recover_attestation_failures", "False"},
      {"shutdown_drain_timeout", "10"},
  };
  return d;
}

const std::map<std::string, std::string>& revocations_defaults() {
  static const std::map<std::string, std::string> d{
      {"enabled_revocation_notifications", "[agent]"},
      {"zmq_ip", "127.0.0.1"},
      {"zmq_port", "8992"},
      {"webhook_url", ""},
  };
  return d;
}

std::set<std::string> key_names(const std::map<std::string, std::string>& defaults) {
  std::set<std::string> out;
  for (const auto& [k, v] : defaults) out.insert(k);
  return out;
}

}  // namespace kl::config
