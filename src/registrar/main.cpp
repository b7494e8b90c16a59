// keylime_registrar: drop-in for upstream Keylime's registrar (wire-contract §2, §5, §7).
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/attest/ek/trust_store.hpp"
#include "common/service/config/config.hpp"
#include "common/service/daemon/daemon_runner.hpp"
#include "common/service/daemon/privileges.hpp"
#include "common/service/http/server.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/registrar_service.hpp"

namespace {

kl::daemon::ProgramInfo program_info() {
  return {"keylime_registrar",
          "Usage: keylime_registrar [-c FILE] [--run-as USER[:GROUP]]\n"
          "\n"
          "Keylime registrar (C++ implementation). Agents register on the plain HTTP port;\n"
          "list/show/delete need mTLS on the TLS port.\n",
          std::string("keylime_registrar ") + KL_VERSION + " (Keylime REST API 2.6)",
          "\n"
          "Configuration: -c FILE, else $KEYLIME_REGISTRAR_CONFIG, else /etc/keylime/registrar.conf, else\n"
          "/usr/etc/keylime/registrar.conf, then registrar.conf.d/ snippets. Every [registrar] option can be\n"
          "overridden with KEYLIME_REGISTRAR_<OPTION>. [tenant] tpm_cert_store is read from tenant.conf.\n"
          "$KEYLIME_DIR (default /var/lib/keylime) holds reg_data.sqlite; tls_dir = default uses the verifier's\n"
          "CA in $KEYLIME_DIR/cv_ca, tls_dir = generate creates $KEYLIME_DIR/reg_ca.\n"
          "Extra options (ours) in [registrar]:\n"
          "  ek_cert_chain_check = enforce | off   check EK certificates against tpm_cert_store\n"
          "  run_as = USER[:GROUP]                 drop root after binding the ports\n"
          "  log_format = text | json              (KEYLIME_LOG_FORMAT wins)\n"};
}

int fail(const std::string& what, int code) {
  std::cerr << "keylime_registrar: " << what << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kl;
  int exit_code = 0;
  const auto cl = daemon::front_door(program_info(), argc, argv, std::cout, std::cerr, exit_code);
  if (!cl) return exit_code;
  const auto& config_file = cl->config_file;
  ::umask(077);  // keys, database and CA files are the service's alone
  if (config_file && !std::filesystem::exists(*config_file))
    return fail("configuration file '" + config_file->string() + "' does not exist", 2);

  const auto env = config::environment();
  std::shared_ptr<spdlog::logger> log;
  try {
    log = kl::log::make_logger("registrar", kl::log::initial_settings(env));
    spdlog::set_default_logger(log);  // the shared plumbing's spdlog::info() lines get the same layout
    kl::log::reconfigure(*log, kl::log::settings_from(env));  // + logging.conf's level
  } catch (const std::invalid_argument& e) {
    return fail(std::string("configuration error: ") + e.what() + " (KEYLIME_LOG_FORMAT)", 2);
  }

  registrar::RegistrarSettings settings;
  std::optional<std::string> log_format, run_as_spec = cl->run_as;
  try {
    const auto reg = config::Config::load("registrar", config_file, env);
    log_format = reg.raw("registrar", "log_format");
    if (!run_as_spec) {
      const auto r = reg.get("registrar", "run_as", "");
      if (!r.empty()) run_as_spec = r;
    }
    kl::log::reconfigure(*log, kl::log::settings_from(env, log_format));  // throws on a bad log_format
    const auto tenant = config::Config::load("tenant", std::nullopt, env);
    settings = registrar::load_settings(reg, tenant, env);
    for (const auto& f : reg.files_read()) log->info("Reading configuration from {}", f.string());
  } catch (const config::ConfigError& e) {
    return fail(std::string("configuration error: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return fail(std::string("cannot read configuration: ") + e.what(), 2);
  }
  for (const auto& w : settings.warnings) log->warn("{}", w);
  std::optional<daemon::RunAs> run_as;
  try {
    run_as = daemon::run_as_at_start(run_as_spec, *log);
  } catch (const daemon::PrivilegeError& e) {
    return fail(e.what(), 2);
  }

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

  // Read at start and again on SIGHUP.
  auto load_tpm_store = [&log](const registrar::RegistrarSettings& st) {
    ek::TrustStore store = ek::TrustStore::from_certificates({});
    if (!st.tpm_cert_store.empty() && std::filesystem::is_directory(st.tpm_cert_store)) {
      store = ek::TrustStore::load_directory(st.tpm_cert_store);
      for (const auto& w : store.warnings()) log->warn("tpm_cert_store: {}", w);
      log->info("Loaded {} CA certificates from tpm_cert_store {}", store.size(), st.tpm_cert_store.string());
    } else {
      log->warn("tpm_cert_store '{}' is not a directory{}", st.tpm_cert_store.string(),
                st.ek_cert_chain_check == registrar::EkChainCheck::enforce
                    ? ": every EK certificate will be rejected (ek_cert_chain_check = enforce)"
                    : "");
    }
    return store;
  };
  ek::TrustStore tpm_store = load_tpm_store(settings);
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
  daemon::ServiceSignals signals;
  daemon::Notifier notifier(env);

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

  if (run_as) {
    // The ports are bound; the rest of the run needs only the state directory.
    try {
      daemon::hand_over({service->settings().keylime_dir}, *run_as);
      daemon::drop_privileges(*run_as);
    } catch (const daemon::PrivilegeError& e) {
      server.stop();
      return fail(std::string("cannot drop privileges: ") + e.what(), 1);
    }
    log->info("Running as {} (uid {}, gid {})", run_as->user, run_as->uid, run_as->gid);
  }

  daemon::Hooks hooks;
  hooks.reload = [&] {
    const auto fresh_env = config::environment();
    kl::log::reconfigure(*log, kl::log::settings_from(fresh_env, log_format));
    server.reload_tls();
    service->replace_tpm_cert_store(load_tpm_store(service->settings()));
    log->info("Log level {}; server certificate, trusted client CAs and tpm_cert_store re-read",
              spdlog::level::to_string_view(log->level()));
  };
  daemon::serve_until_stopped(signals, notifier, hooks, *log, "registrar listening");
  // In-flight registrations finish and commit (each is one SQLite transaction) before the store closes.
  if (!server.shutdown(std::chrono::seconds(10))) log->warn("Requests still in flight after 10 s were cut off");
  log->info("Registrar stopped");
  log->flush();
  return 0;
}
