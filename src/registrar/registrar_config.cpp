#include "registrar/registrar_config.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

#include "common/service/config/known_keys.hpp"
#include "common/service/storage/database_url.hpp"

namespace kl::registrar {

namespace {

const char* const kSection = "registrar";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string get(const config::Config& c, const std::string& key) {
  const auto& defaults = config::registrar_defaults();
  auto it = defaults.find(key);
  return c.get(kSection, key, it == defaults.end() ? std::string{} : it->second);
}

long long get_int(const config::Config& c, const std::string& key, long long fallback) {
  const auto& defaults = config::registrar_defaults();
  auto it = defaults.find(key);
  if (it != defaults.end() && !it->second.empty()) fallback = std::stoll(it->second);
  return c.get_int(kSection, key, fallback);
}

[[noreturn]] void bad_value(const std::string& key, const std::string& value, const std::string& expected) {
  throw config::ConfigError("invalid value '" + value + "' for [registrar] " + key + ": expected " + expected);
}

std::uint16_t port_value(const config::Config& c, const std::string& key) {
  const long long v = get_int(c, key, 0);
  if (v < 0 || v > 65535) bad_value(key, std::to_string(v), "a TCP port number (0-65535)");
  return static_cast<std::uint16_t>(v);
}

// Relative paths are taken against $KEYLIME_DIR, as upstream's os.path.join(WORK_DIR, value).
std::filesystem::path under(const std::filesystem::path& base, const std::string& value) {
  return (base / value).lexically_normal();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

SurrogateSettings surrogate_settings(const config::Config& reg, const std::filesystem::path& keylime_dir) {
  SurrogateSettings s;
  auto on_off = [&](const std::string& key, bool fallback) {
    try {
      return reg.get_bool(kSection, key, fallback);
    } catch (const std::exception&) {
      bad_value(key, reg.get(kSection, key, ""), "on or off");
    }
  };
  s.enabled = on_off("snp_surrogates", true);
  s.cert_store = under(keylime_dir, trim(reg.get(kSection, "snp_cert_store", "snp_cert_store")));
  for (const auto& pin : reg.get_list(kSection, "snp_additional_ark_sha256", {})) {
    std::string p = lower(trim(pin));
    p.erase(std::remove(p.begin(), p.end(), ':'), p.end());
    if (p.empty()) continue;
    if (p.size() != 64 || p.find_first_not_of("0123456789abcdef") != std::string::npos)
      bad_value("snp_additional_ark_sha256", pin, "SHA-256 fingerprints (64 hex digits)");
    s.extra_ark_pins.push_back(p);
  }
  s.kds = on_off("snp_kds", false);
  s.kds_url = trim(reg.get(kSection, "snp_kds_url", s.kds_url));
  while (!s.kds_url.empty() && s.kds_url.back() == '/') s.kds_url.pop_back();
  if (s.kds_url.rfind("https://", 0) != 0 && s.kds_url.rfind("http://", 0) != 0)
    bad_value("snp_kds_url", s.kds_url, "an http:// or https:// URL");
  s.kds_cache = under(keylime_dir, trim(reg.get(kSection, "snp_kds_cache", "snp_kds_cache")));
  const std::string crl = lower(trim(reg.get(kSection, "snp_crl", "when_present")));
  if (crl == "off") s.crl = CrlMode::off;
  else if (crl == "when_present") s.crl = CrlMode::when_present;
  else if (crl == "required") s.crl = CrlMode::required;
  else bad_value("snp_crl", crl, "off, when_present or required");
  const std::string product = trim(reg.get(kSection, "snp_product", "auto"));
  if (lower(product) != "auto") {
    s.product = snp::product_from_name(product);
    if (!s.product) bad_value("snp_product", product, "auto, Milan, Genoa or Turin");
  }
  s.allow_bare_tpmt = on_off("snp_ek_digest_bare_tpmt", false);
  s.azure_allow_missing_ek = on_off("azure_allow_missing_hcl_ek", false);
  s.policy_setting = trim(reg.get(kSection, "snp_policy", "default"));
  if (s.policy_setting.empty()) bad_value("snp_policy", "", "'default' or a JSON policy file");
  if (s.policy_setting != "default") {
    s.policy_file = under(keylime_dir, s.policy_setting);
    try {
      s.policy = snp::load_policy_file(s.policy_file);
    } catch (const std::exception& e) {
      throw config::ConfigError("invalid [registrar] snp_policy '" + s.policy_file.string() + "': " + e.what());
    }
  }
  return s;
}

}  // namespace

const std::set<std::string>& known_registrar_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k = config::key_names(config::registrar_defaults());
    k.insert("version");
    k.insert("max_upload_size");
    k.insert("ek_cert_chain_check");   // ours
    k.insert("metrics_port");          // ours: plain-HTTP /metrics listener, 0 = none
    for (const char* key : {"snp_surrogates", "snp_cert_store", "snp_kds", "snp_kds_url", "snp_kds_cache", "snp_crl",
                            "snp_product", "snp_ek_digest_bare_tpmt", "snp_policy", "azure_allow_missing_hcl_ek",
                            "snp_additional_ark_sha256"})
      k.insert(key);   // ours (EK-certificate surrogates)
    for (const auto& t : http::server_tuning_keys()) k.insert(t);  // ours
    k.insert("run_as");                // ours, read by main.cpp (daemon runner)
    k.insert("log_format");            // ours, read by main.cpp (text | json)
    return k;
  }();
  return keys;
}

RegistrarSettings load_settings(const config::Config& reg, const config::Config& tenant,
                                const std::map<std::string, std::string>& env) {
  RegistrarSettings s;
  for (const auto& k : reg.unknown_keys(kSection, known_registrar_keys()))
    s.warnings.push_back("unknown key '" + k + "' in [registrar] is ignored");

  s.keylime_dir = config::keylime_dir(env);
  s.ip = trim(get(reg, "ip"));
  if (s.ip.empty()) bad_value("ip", "", "an IP address or host name");
  s.port = port_value(reg, "port");
  s.tls_port = port_value(reg, "tls_port");

  s.tls_dir_setting = trim(get(reg, "tls_dir"));
  if (s.tls_dir_setting.empty()) bad_value("tls_dir", "", "'default', 'generate' or a directory");
  if (s.tls_dir_setting == "generate") {
    s.tls_dir = s.keylime_dir / "reg_ca";
    s.generate_tls = true;
  } else if (s.tls_dir_setting == "default") {
    s.tls_dir = s.keylime_dir / "cv_ca";
  } else {
    s.tls_dir = under(s.keylime_dir, s.tls_dir_setting);
  }
  for (const auto& san : reg.get_list(kSection, "cert_subject_alternative_names", {}))
    if (!trim(san).empty()) s.cert_subject_alternative_names.push_back(trim(san));

  const std::string server_cert = trim(get(reg, "server_cert"));
  const std::string server_key = trim(get(reg, "server_key"));
  const std::string client_ca = trim(get(reg, "trusted_client_ca"));
  if (s.generate_tls) {
    // Upstream refuses tls_dir = generate unless these are `default` (web_util.init_tls_dir).
    for (const auto& [key, value] : {std::pair{"server_cert", server_cert}, {"server_key", server_key},
                                     {"trusted_client_ca", client_ca}})
      if (value != "default") bad_value(key, value, "'default' when tls_dir = generate");
  }
  if (server_cert.empty()) bad_value("server_cert", "", "'default' or a certificate file");
  if (server_key.empty()) bad_value("server_key", "", "'default' or a key file");
  s.server_cert = server_cert == "default" ? s.tls_dir / "server-cert.crt" : under(s.tls_dir, server_cert);
  s.server_key = server_key == "default" ? s.tls_dir / "server-private.pem" : under(s.tls_dir, server_key);
  s.server_key_password = get(reg, "server_key_password");

  s.client_ca_default = false;
  if (client_ca == "default") {
    s.client_ca_default = true;
    s.trusted_client_ca.push_back(s.keylime_dir / "cv_ca" / "cacert.crt");
  } else if (client_ca == "all") {
    s.client_ca_all = true;
  } else if (client_ca.empty()) {
    s.warnings.push_back("no value in [registrar] trusted_client_ca: admin routes will refuse every client");
  } else {
    for (const auto& f : reg.get_list(kSection, "trusted_client_ca", {}))
      if (!trim(f).empty()) s.trusted_client_ca.push_back(under(s.tls_dir, trim(f)));
  }

  s.database_url = trim(get(reg, "database_url"));
  if (s.database_url.empty()) bad_value("database_url", "", "'sqlite' or a database URL");
  try {
    s.database_url = storage::with_pool_size(s.database_url, get(reg, "database_pool_sz_ovfl"));
  } catch (const std::exception&) {
    bad_value("database_pool_sz_ovfl", get(reg, "database_pool_sz_ovfl"), "'<pool size>,<overflow>'");
  }
  s.metrics_port = port_value(reg, "metrics_port");

  const std::string identity = lower(trim(get(reg, "tpm_identity")));
  if (identity == "default") s.tpm_identity = TpmIdentity::default_;
  else if (identity == "ek_cert") s.tpm_identity = TpmIdentity::ek_cert;
  else if (identity == "iak_idevid") s.tpm_identity = TpmIdentity::iak_idevid;
  else if (identity == "ek_cert_or_iak_idevid") s.tpm_identity = TpmIdentity::ek_cert_or_iak_idevid;
  else bad_value("tpm_identity", identity, "one of default, ek_cert, iak_idevid, ek_cert_or_iak_idevid");

  const std::string mca = lower(trim(get(reg, "malformed_cert_action")));
  if (mca == "warn") s.malformed_cert_action = MalformedCertAction::warn;
  else if (mca == "reject") s.malformed_cert_action = MalformedCertAction::reject;
  else if (mca == "ignore") s.malformed_cert_action = MalformedCertAction::ignore;
  else bad_value("malformed_cert_action", mca, "one of warn, reject, ignore");

  const std::string chain = lower(trim(reg.get(kSection, "ek_cert_chain_check", "enforce")));
  if (chain == "enforce") s.ek_cert_chain_check = EkChainCheck::enforce;
  else if (chain == "off") s.ek_cert_chain_check = EkChainCheck::off;
  else bad_value("ek_cert_chain_check", chain, "enforce or off");

  const long long upload = get_int(reg, "max_upload_size", 104857600);
  if (upload <= 0) bad_value("max_upload_size", std::to_string(upload), "a positive number of bytes");
  s.max_upload_size = static_cast<std::size_t>(upload);
  s.server_tuning = http::read_server_tuning(reg, kSection);

  const long long workers = get_int(reg, "max_workers", 16);
  if (workers < 0) bad_value("max_workers", std::to_string(workers), "a non-negative number");
  // Handlers are short and CPU-bound: one io thread per core, capped by max_workers (0 = no cap).
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  s.worker_threads = workers == 0 ? cores : std::max(1u, std::min<unsigned>(cores, static_cast<unsigned>(workers)));

  s.surrogates = surrogate_settings(reg, s.keylime_dir);

  const std::string store = trim(tenant.get("tenant", "tpm_cert_store", "/var/lib/keylime/tpm_cert_store"));
  s.tpm_cert_store = store.empty() ? std::filesystem::path{} : under(s.keylime_dir, store);
  return s;
}

}  // namespace kl::registrar
