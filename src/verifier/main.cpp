// keylime_verifier: drop-in for upstream Keylime's verifier, pull mode (wire-contract §3-§8).
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/service/config/config.hpp"
#include "common/service/daemon/daemon_runner.hpp"
#include "common/service/daemon/privileges.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/http/server.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "verifier/poller.hpp"
#include "verifier/registrar_client.hpp"
#include "verifier/verifier_config.hpp"
#include "verifier/verifier_service.hpp"
#include "verifier/version_handler.hpp"

namespace {

kl::daemon::ProgramInfo program_info() {
  return {"keylime_verifier",
          "Usage: keylime_verifier [-c FILE] [--run-as USER[:GROUP]]\n"
          "\n"
          "Keylime verifier (C++ implementation), pull mode: the tenant adds agents over mTLS on [verifier] port,\n"
          "the verifier then polls each agent for quotes and verifies them continuously.\n",
          std::string("keylime_verifier ") + KL_VERSION + " (Keylime REST API " + kl::verifier::current_api_version() + ")",
          "\n"
          "Configuration: -c FILE, else $KEYLIME_VERIFIER_CONFIG, else /etc/keylime/verifier.conf, else\n"
          "/usr/etc/keylime/verifier.conf, then verifier.conf.d/ snippets. Every [verifier] option can be overridden\n"
          "with KEYLIME_VERIFIER_<OPTION>, [revocations] options with KEYLIME_VERIFIER_REVOCATIONS_<OPTION>.\n"
          "With tls_dir = generate the CA in $KEYLIME_DIR/cv_ca is created on first start (cacert.crt, server and\n"
          "client certificates for the verifier, tenant and registrar). $KEYLIME_DIR (default /var/lib/keylime)\n"
          "holds cv_data.sqlite.\n"
          "Extra options (ours) in [verifier]:\n"
          "  run_as = USER[:GROUP]      drop root after binding the port\n"
          "  log_format = text | json   (KEYLIME_LOG_FORMAT wins)\n"};
}

int fail(const std::string& what, int code) {
  std::cerr << "keylime_verifier: " << what << "\n";
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
    log = kl::log::make_logger("verifier", kl::log::initial_settings(env));
    spdlog::set_default_logger(log);  // the shared plumbing's spdlog::info() lines get the same layout
    kl::log::reconfigure(*log, kl::log::settings_from(env));  // + logging.conf's level
  } catch (const std::invalid_argument& e) {
    return fail(std::string("configuration error: ") + e.what() + " (KEYLIME_LOG_FORMAT)", 2);
  }

  verifier::VerifierSettings settings;
  std::optional<std::string> log_format, run_as_spec = cl->run_as;
  try {
    const auto conf = config::Config::load("verifier", config_file, env);
    log_format = conf.raw("verifier", "log_format");
    if (!run_as_spec) {
      const auto r = conf.get("verifier", "run_as", "");
      if (!r.empty()) run_as_spec = r;
    }
    kl::log::reconfigure(*log, kl::log::settings_from(env, log_format));
    settings = verifier::load_settings(conf, env);
    for (const auto& f : conf.files_read()) log->info("Reading configuration from {}", f.string());
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
  if (settings.revocations.zeromq_requested)
    return fail("[revocations] enabled_revocation_notifications lists 'zeromq', which this verifier does not support; "
                "use 'agent' and/or 'webhook'",
                2);

  try {
    tls::TlsDirRequest req;
    req.dir = settings.tls_dir;
    req.generate = settings.generate_tls;
    req.server_ip = settings.ip;
    req.extra_sans = settings.cert_subject_alternative_names;
    req.with_client_cert = true;   // the tenant and the verifier itself (towards agents and registrar) use it
    if (settings.generate_tls) {
      tls::ensure_tls_dir(req);
      log->info("TLS material in {}", settings.tls_dir.string());
    } else if (!std::filesystem::is_directory(settings.tls_dir)) {
      return fail("tls_dir '" + settings.tls_dir.string() + "' does not exist (create it, or set [verifier] tls_dir = generate)", 1);
    }
    for (const auto& f : {settings.server_cert, settings.server_key, settings.client_cert, settings.client_key})
      if (!std::filesystem::exists(f)) return fail("TLS file '" + f.string() + "' does not exist", 1);
    for (const auto& f : settings.trusted_client_ca)
      if (!std::filesystem::exists(f)) return fail("trusted_client_ca file '" + f.string() + "' does not exist", 1);
    for (const auto& f : settings.trusted_server_ca)
      if (!std::filesystem::exists(f)) return fail("trusted_server_ca file '" + f.string() + "' does not exist", 1);
  } catch (const std::exception& e) {
    return fail(std::string("cannot prepare tls_dir: ") + e.what(), 1);
  }

  std::unique_ptr<storage::VerifierStore> store;
  try {
    store = storage::open_verifier_store(settings.database_url, settings.keylime_dir);
  } catch (const std::exception& e) {
    return fail(std::string("cannot open the database: ") + e.what(), 1);
  }

  // Signals are taken synchronously by this thread; block them before any thread exists.
  daemon::ServiceSignals signals;
  daemon::Notifier notifier(env);

  loop::EventLoop event_loop(1);
  std::optional<loop::WorkerPool> workers;
  workers.emplace(settings.worker_threads);
  http::AsyncClientOptions copts;
  copts.client_cert_file = settings.client_cert.string();
  copts.client_key_file = settings.client_key.string();
  copts.client_key_password = settings.client_key_password;
  for (const auto& f : settings.trusted_server_ca) copts.ca_files.push_back(f.string());
  std::optional<http::AsyncClient> client;
  try {
    client.emplace(event_loop, copts);
  } catch (const std::exception& e) {
    return fail(std::string("cannot load the verifier's client certificate: ") + e.what(), 1);
  }
  auto poller = std::make_unique<verifier::Poller>(settings, *store, event_loop, *client, *workers, log);

  verifier::RegistrarClientOptions ropts;
  ropts.host = settings.registrar_ip;
  ropts.port = settings.registrar_port;
  ropts.tls.cert_file = settings.client_cert.string();
  ropts.tls.key_file = settings.client_key.string();
  ropts.tls.key_password = settings.client_key_password;
  for (const auto& f : settings.trusted_server_ca) ropts.tls.ca_files.push_back(f.string());
  ropts.tls.verify_server = !settings.server_ca_all;
  ropts.timeout = std::chrono::milliseconds(static_cast<long long>(settings.request_timeout * 1000.0));
  verifier::RegistrarLookupFn registrar = [ropts](const std::string& id) {
    return verifier::lookup_agent_at_registrar(ropts, id);
  };

  verifier::VerifierService service(settings, *store, poller.get(), registrar, log);
  http::ServerOptions opts;
  http::TlsServerConfig tls{settings.server_cert.string(), settings.server_key.string(), settings.server_key_password, {}};
  for (const auto& f : settings.trusted_client_ca) tls.trusted_client_ca_files.push_back(f.string());
  opts.listeners = {http::ListenerConfig{settings.ip, settings.port, tls}};
  opts.max_body_bytes = settings.max_upload_size;
  settings.server_tuning.apply(opts);
  opts.threads = 2;
  http::Server server(opts, [&service](const http::Request& r) { return service.handle(r); });
  try {
    server.start();
  } catch (const std::exception& e) {
    return fail(std::string("cannot start the listener: ") + e.what(), 1);
  }
  log->info("Keylime verifier {} listening on {}:{} (HTTPS, mTLS for the tenant API)", settings.uuid, settings.ip,
            server.bound_ports().at(0));
  if (run_as) {
    try {
      daemon::hand_over({settings.keylime_dir}, *run_as);
      daemon::drop_privileges(*run_as);
    } catch (const daemon::PrivilegeError& e) {
      return fail(std::string("cannot drop privileges: ") + e.what(), 1);
    }
    log->info("Running as {} (uid {}, gid {})", run_as->user, run_as->uid, run_as->gid);
  }

  const std::size_t resumed = poller->resume_all();
  log->info("Resumed polling of {} agent(s) from the database", resumed);

  daemon::Hooks hooks;
  hooks.reload = [&] {
    kl::log::reconfigure(*log, kl::log::settings_from(config::environment(), log_format));
    server.reload_tls();
    poller->reload_policies();
    log->info("Log level {}; server certificate, trusted client CAs and policies re-read (agents keep being polled)",
              spdlog::level::to_string_view(log->level()));
  };
  daemon::serve_until_stopped(signals, notifier, hooks, *log, "verifier listening");
  // Tenant requests in flight finish (and commit) before the poller and the store go away.
  if (!server.shutdown(std::chrono::seconds(10))) log->warn("Requests still in flight after 10 s were cut off");
  // Order matters: no new timers, no more loop callbacks, drain the workers (their jobs see the shutdown and
  // return), then the client, then the poller the jobs referred to.
  poller->shutdown();
  event_loop.stop();
  workers.reset();
  client.reset();
  poller.reset();
  log->info("Verifier stopped");
  log->flush();
  return 0;
}
