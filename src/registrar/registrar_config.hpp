// Typed registrar settings, read once from registrar.conf (+ tenant.conf for tpm_cert_store).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/service/config/config.hpp"
#include "common/service/http/server_tuning.hpp"

namespace kl::registrar {

enum class TpmIdentity { default_, ek_cert, iak_idevid, ek_cert_or_iak_idevid };
enum class MalformedCertAction { warn, reject, ignore };
// Our extension ([registrar] ek_cert_chain_check): `enforce` checks a received EK certificate against
// tpm_cert_store at registration; `off` is upstream's behaviour (left to the tenant).
enum class EkChainCheck { enforce, off };

struct RegistrarSettings {
  std::string ip = "127.0.0.1";
  std::uint16_t port = 8890;
  std::uint16_t tls_port = 8891;
  std::filesystem::path keylime_dir = "/var/lib/keylime";

  // tls_dir as configured ("default", "generate" or a path) and resolved (§5.3).
  std::string tls_dir_setting = "default";
  std::filesystem::path tls_dir;
  bool generate_tls = false;
  std::vector<std::string> cert_subject_alternative_names;
  std::filesystem::path server_cert, server_key;
  std::string server_key_password;
  // trusted_client_ca resolved to files; `trusted_client_ca = all` -> empty and client_ca_all = true
  // (no client certificates requested: admin routes then deny everyone).
  std::vector<std::filesystem::path> trusted_client_ca;
  bool client_ca_all = false;
  bool client_ca_default = true;   // "default": $KEYLIME_DIR/cv_ca/cacert.crt

  std::string database_url = "sqlite";
  TpmIdentity tpm_identity = TpmIdentity::default_;
  MalformedCertAction malformed_cert_action = MalformedCertAction::warn;
  EkChainCheck ek_cert_chain_check = EkChainCheck::enforce;
  std::size_t max_upload_size = 104857600;
  http::ServerTuning server_tuning;   // server_request_timeout, server_max_*_per_peer (ours)
  std::filesystem::path tpm_cert_store = "/var/lib/keylime/tpm_cert_store";
  unsigned worker_threads = 2;

  // Non-fatal findings while reading (unknown keys, ...), for the caller to log.
  std::vector<std::string> warnings;
};

// The keys we read from [registrar], including our own `ek_cert_chain_check`.
const std::set<std::string>& known_registrar_keys();

// Throws config::ConfigError whose message names the key for a bad value (bad port, unknown enum value,...).
RegistrarSettings load_settings(const config::Config& registrar, const config::Config& tenant,
                                const std::map<std::string, std::string>& env);

}  // namespace kl::registrar
