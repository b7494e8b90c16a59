// keylime_verifier: drop-in for upstream Keylime's verifier, pull mode (wire-contract §3-§8).
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/service/config/config.hpp"
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

const char* const kUsage =
    "Usage: keylime_verifier [-c FILE]\n"
    "\n"
    "Keylime verifier (C++ implementation), pull mode: the tenant adds agents over mTLS on [verifier] port,\n"
    "the verifier then polls each agent for quotes and verifies them continuously.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  read verifier.conf from FILE (default: $KEYLIME_VERIFIER_CONFIG,\n"
    "                     then /etc/keylime/verifier.conf, /usr/etc/keylime/verifier.conf)\n"
    "  -h, --help         show this help and exit\n"
    "  -v, --version      show the version and exit\n"
    "\n"
    "Every [verifier] option can be overridden with KEYLIME_VERIFIER_<OPTION>, [revocations] options with\n"
    "KEYLIME_VERIFIER_REVOCATIONS_<OPTION>. With tls_dir = generate the CA in $KEYLIME_DIR/cv_ca is created on\n"
    "first start (cacert.crt, server and client certificates for the verifier, tenant and registrar).\n";

int fail(const std::string& what, int code) {
  std::cerr << "keylime_verifier: " << what << "\n";
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
      std::cout << "keylime_verifier " << KL_VERSION << " (Keylime REST API " << verifier::current_api_version() << ")\n";
      return 0;
    }
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
    } else {
      std::cerr << "keylime_verifier: unknown argument '" << a << "'\n\n" << kUsage;
      return 2;
    }
  }
  if (config_file && !std::filesystem::exists(*config_file))
    return fail("configuration file '" + config_file->string() + "' does not exist", 2);

  const auto env = config::environment();
  auto log = kl::log::make_logger("verifier", env);

  verifier::VerifierSettings settings;
  try {
    const auto conf = config::Config::load("verifier", config_file, env);
    settings = verifier::load_settings(conf, env);
    for (const auto& f : conf.files_read()) log->info("Reading configuration from {}", f.string());
  } catch (const config::ConfigError& e) {
    return fail(std::string("configuration error: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return fail(std::string("cannot read configuration: ") + e.what(), 2);
  }
  for (const auto& w : settings.warnings) log->warn("{}", w);
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

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

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
  const std::size_t resumed = poller->resume_all();
  log->info("Resumed polling of {} agent(s) from the database", resumed);

  int sig = 0;
  sigwait(&signals, &sig);
  log->info("Received signal {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
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
