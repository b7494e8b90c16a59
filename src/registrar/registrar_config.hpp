// Typed registrar settings, read once from registrar.conf (+ tenant.conf for tpm_cert_store).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/product.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/server_tuning.hpp"

namespace kl::registrar {

enum class TpmIdentity { default_, ek_cert, iak_idevid, ek_cert_or_iak_idevid };
enum class MalformedCertAction { warn, reject, ignore };
// Our extension ([registrar] ek_cert_chain_check): `enforce` checks a received EK certificate against
// tpm_cert_store at registration; `off` is upstream's behaviour (left to the tenant).
enum class EkChainCheck { enforce, off };

// EK-certificate surrogates (docs/snp-surrogates.md): SEV-SNP reports (SVSM-vTPM) sent in `ekcert`, and Azure CVM
// HCL reports (in `ekcert` or `azure_hcl_report`). All keys are ours, in [registrar].
enum class CrlMode { off, when_present, required };
struct SurrogateSettings {
  bool enabled = true;                          // snp_surrogates = on | off
  std::filesystem::path cert_store;             // snp_cert_store (ARKs pinned, ASK/ASVK, VCEK/VLEK, CRLs)
  // snp_additional_ark_sha256: SHA-256 fingerprints of further ARKs to trust for every product besides AMD's
  // published ones (labs and tests with their own "AMD"); empty by default.
  std::vector<std::string> extra_ark_pins;
  bool kds = false;                             // snp_kds = on: fetch missing AMD certificates from KDS
  std::string kds_url = "https://kdsintf.amd.com";   // snp_kds_url
  std::filesystem::path kds_cache;              // snp_kds_cache
  CrlMode crl = CrlMode::when_present;          // snp_crl = off | when_present | required
  std::optional<snp::Product> product;          // snp_product = auto | Milan | Genoa | Turin (v2 reports)
  bool allow_bare_tpmt = false;                 // snp_ek_digest_bare_tpmt
  std::string policy_setting = "default";       // snp_policy as configured ("default" = built-in defaults)
  std::filesystem::path policy_file;            // resolved; empty for "default"
  snp::SnpPolicy policy;                        // loaded from policy_file (or the defaults)
  bool azure_allow_missing_ek = false;          // azure_allow_missing_hcl_ek
};

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

  // With database_pool_sz_ovfl folded in as "?pool_size=N" for a PostgreSQL URL (storage/database_url.hpp).
  std::string database_url = "sqlite";
  // Our extension ([registrar] metrics_port): a plain-HTTP listener on `ip` serving only GET /metrics;
  // 0 (the default) = none (/metrics is then only on tls_port, with mTLS).
  std::uint16_t metrics_port = 0;
  TpmIdentity tpm_identity = TpmIdentity::default_;
  MalformedCertAction malformed_cert_action = MalformedCertAction::warn;
  EkChainCheck ek_cert_chain_check = EkChainCheck::enforce;
  std::size_t max_upload_size = 104857600;
  http::ServerTuning server_tuning;   // server_request_timeout, server_max_*_per_peer (ours)
  std::filesystem::path tpm_cert_store = "/var/lib/keylime/tpm_cert_store";
  unsigned worker_threads = 2;
  SurrogateSettings surrogates;

  // Non-fatal findings while reading (unknown keys, ...), for the caller to log.
  std::vector<std::string> warnings;
};

// The keys we read from [registrar], including our own `ek_cert_chain_check` and the snp_* / azure_* keys.
const std::set<std::string>& known_registrar_keys();

// Throws config::ConfigError whose message names the key for a bad value (bad port, unknown enum value,...).
RegistrarSettings load_settings(const config::Config& registrar, const config::Config& tenant,
                                const std::map<std::string, std::string>& env);

}  // namespace kl::registrar
