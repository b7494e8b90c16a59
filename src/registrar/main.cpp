// keylime_registrar: drop-in for upstream Keylime's registrar (wire-contract §2, §5, §7).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/attest/ek/trust_store.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/server.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/registrar_service.hpp"

namespace {

const char* const kUsage =
    "Usage: keylime_registrar [-c FILE]\n"
    "\n"
    "Keylime registrar (C++ implementation). Agents register on the plain HTTP port;\n"
    "list/show/delete need mTLS on the TLS port.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  read registrar.conf from FILE (default: $KEYLIME_REGISTRAR_CONFIG,\n"
    "                     then /etc/keylime/registrar.conf, /usr/etc/keylime/registrar.conf)\n"
    "  -h, --help         show this help and exit\n"
    "  -v, --version      show the version and exit\n"
    "\n"
    "Every [registrar] option can be overridden with KEYLIME_REGISTRAR_<OPTION>.\n"
    "[tenant] tpm_cert_store is read from tenant.conf. Extra option (ours):\n"
    "  ek_cert_chain_check = enforce | off   check EK certificates against tpm_cert_store\n";

int fail(const std::string& what, int code) {
  std::cerr << "keylime_registrar: " << what << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kl;
  std::optional<std::filesystem::path> config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "-v" || a == "--version") {
      std::cout << "keylime_registrar " << KL_VERSION << " (Keylime REST API 2.6)\n";
      return 0;
    }
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
    } else {
      std::cerr << "keylime_registrar: unknown argument '" << a << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (config_file && !std::filesystem::exists(*config_file))
    return fail("configuration file '" + config_file->string() + "' does not exist", 2);

  const auto env = config::environment();
  auto log = kl::log::make_logger("registrar", env);

  registrar::RegistrarSettings settings;
  try {
    const auto reg = config::Config::load("registrar", config_file, env);
    const auto tenant = config::Config::load("tenant", std::nullopt, env);
    settings = registrar::load_settings(reg, tenant, env);
    for (const auto& f : reg.files_read()) log->info("Reading configuration from {}", f.string());
  } catch (const config::ConfigError& e) {
    return fail(std::string("configuration error: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return fail(std::string("cannot read configuration: ") + e.what(), 2);
  }
  for (const auto& w : settings.warnings) log->warn("{}", w);

  // TLS material (§5.3).
  try {
    if (settings.generate_tls) {
      tls::TlsDirRequest req;
      req.dir = settings.tls_dir;
      req.generate = true;
      req.server_ip = settings.ip;
      req.extra_sans = settings.cert_subject_alternative_names;
      req.with_client_cert = true;   // so an operator/tenant has a client certificate for the admin routes
      tls::ensure_tls_dir(req);
      // trusted_client_ca = default names the verifier's CA ($KEYLIME_DIR/cv_ca); with no verifier CA yet,
      // trust the CA just generated here rather than refusing every admin request.
      if (settings.client_ca_default && !std::filesystem::exists(settings.trusted_client_ca.front())) {
        log->warn("{} does not exist: trusting the generated CA {} for client certificates",
                  settings.trusted_client_ca.front().string(), (settings.tls_dir / "cacert.crt").string());
        settings.trusted_client_ca = {settings.tls_dir / "cacert.crt"};
      }
    } else if (!std::filesystem::is_directory(settings.tls_dir)) {
      return fail("tls_dir '" + settings.tls_dir.string() +
                      "' does not exist (create it, or set [registrar] tls_dir = generate)", 1);
    }
    for (const auto& f : {settings.server_cert, settings.server_key})
      if (!std::filesystem::exists(f)) return fail("TLS file '" + f.string() + "' does not exist", 1);
    for (const auto& f : settings.trusted_client_ca)
      if (!std::filesystem::exists(f))
        return fail("trusted_client_ca file '" + f.string() + "' does not exist", 1);
  } catch (const std::exception& e) {
    return fail(std::string("cannot prepare tls_dir: ") + e.what(), 1);
  }

  std::unique_ptr<storage::RegistrarStore> store;
  try {
    store = storage::open_registrar_store(settings.database_url, settings.keylime_dir);
  } catch (const std::exception& e) {
    return fail(std::string("cannot open the database: ") + e.what(), 1);
  }

  ek::TrustStore tpm_store = ek::TrustStore::from_certificates({});
  if (!settings.tpm_cert_store.empty() && std::filesystem::is_directory(settings.tpm_cert_store)) {
    tpm_store = ek::TrustStore::load_directory(settings.tpm_cert_store);
    for (const auto& w : tpm_store.warnings()) log->warn("tpm_cert_store: {}", w);
    log->info("Loaded {} CA certificates from tpm_cert_store {}", tpm_store.size(), settings.tpm_cert_store.string());
  } else {
    log->warn("tpm_cert_store '{}' is not a directory{}", settings.tpm_cert_store.string(),
              settings.ek_cert_chain_check == registrar::EkChainCheck::enforce
                  ? ": every EK certificate will be rejected (ek_cert_chain_check = enforce)"
                  : "");
  }
  if (settings.ek_cert_chain_check == registrar::EkChainCheck::off)
    log->info("ek_cert_chain_check = off: EK certificates are not checked at registration (upstream behaviour)");

  http::ServerOptions opts;
  http::ListenerConfig plain{settings.ip, settings.port, std::nullopt};
  http::TlsServerConfig tls{settings.server_cert.string(), settings.server_key.string(), settings.server_key_password, {}};
  for (const auto& f : settings.trusted_client_ca) tls.trusted_client_ca_files.push_back(f.string());
  opts.listeners = {plain, http::ListenerConfig{settings.ip, settings.tls_port, tls}};
  opts.max_body_bytes = settings.max_upload_size;
  settings.server_tuning.apply(opts);
  opts.threads = settings.worker_threads;

  // Signals are taken synchronously by this thread; block them before any server thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto service = std::make_shared<registrar::RegistrarService>(std::move(settings), std::move(store),
                                                               std::move(tpm_store), log);
  http::Server server(opts, [service](const http::Request& r) { return service->handle(r); });
  try {
    server.start();
  } catch (const std::exception& e) {
    return fail(std::string("cannot start listeners: ") + e.what(), 1);
  }
  const auto ports = server.bound_ports();
  log->info("Keylime registrar listening on {}:{} (HTTP) and {}:{} (HTTPS, mTLS for admin routes)",
            service->settings().ip, ports.at(0), service->settings().ip, ports.at(1));

  int sig = 0;
  sigwait(&signals, &sig);
  log->info("Received signal {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
  log->info("Registrar stopped");
  log->flush();
  return 0;
}
