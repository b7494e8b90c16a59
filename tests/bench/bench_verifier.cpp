// Verifier scale benchmark: a fleet of software-TPM agents (kl_test_agent fleet, a separate process, so that the
// figures below are the verifier's alone) polled by the verifier core (Poller + one event-loop thread + a worker
// pool + one AsyncClient) in this process, agents added through the tenant API handler.
//
//   bench_verifier [--agents N] [--interval SECONDS] [--seconds T] [--warmup W] [--workers K] [--no-mtls]
//                  [--fleet-threads F] [--max-idle N]
// --max-idle caps the kept-alive connections (0: every poll opens a new connection, a full TLS handshake with mTLS).
//
// Prints: agents polled, quotes verified per second, p50/p99 poll lateness, verifier CPU and RSS per agent.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/service/config/config.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "verifier/poller.hpp"
#include "verifier/verifier_service.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// utime + stime of another process (the fleet), from /proc/<pid>/stat.
double process_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(all.substr(close + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) st = std::stoull(field);
  }
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == "--" + name) return true;
  return false;
}

const std::string kZero(64, '0');

}  // namespace

int main(int argc, char** argv) {
  const std::size_t agents = std::stoul(arg(argc, argv, "agents", "1000"));
  const double interval = std::stod(arg(argc, argv, "interval", "2"));
  const double seconds = std::stod(arg(argc, argv, "seconds", "20"));
  const double warmup = std::stod(arg(argc, argv, "warmup", "4"));
  const unsigned workers_n = static_cast<unsigned>(std::stoul(arg(argc, argv, "workers", "1")));
  const bool mtls = !flag(argc, argv, "no-mtls");
  // The fleet's server threads: both cores, so the simulator (ECDSA signing, its TLS) is not the bottleneck.
  const std::string fleet_threads = arg(argc, argv, "fleet-threads", "2");

  kl::testing::TempDir dir;
  std::map<std::string, std::string> env{{"KEYLIME_DIR", dir.path().string()}};
  std::ostringstream ini;
  ini << "[verifier]\nquote_interval = " << interval << "\nrequest_timeout = 30\nmax_retries = 5\n"
      << "enable_agent_mtls = " << (mtls ? "True" : "False") << "\n";
  const auto settings = kl::verifier::load_settings(kl::config::Config::from_string("verifier", ini.str(), env), env);
  kl::tls::TlsDirRequest t;
  t.dir = settings.tls_dir;
  t.generate = true;
  t.server_ip = "127.0.0.1";
  kl::tls::ensure_tls_dir(t);

  // The fleet, in its own process.
  std::vector<std::string> fleet_argv{(std::filesystem::path(KL_BINARY_DIR) / "tests" / "kl_test_agent").string(),
                                      "fleet", "--count", std::to_string(agents),
                                      "--threads", fleet_threads};
  if (!std::filesystem::exists(fleet_argv[0])) fleet_argv[0] = (std::filesystem::path(KL_BINARY_DIR) / "kl_test_agent").string();
  if (mtls) {
    fleet_argv.push_back("--ca");
    fleet_argv.push_back(settings.trusted_client_ca.at(0).string());
  } else {
    fleet_argv.push_back("--no-mtls");
  }
  std::cerr << "starting fleet of " << agents << " agents...\n";
  kl::testing::ChildProcess fleet(fleet_argv, {}, dir.path() / "fleet.log");
  std::vector<json> lines;
  std::string fleet_cert = "disabled";
  const auto deadline = std::chrono::steady_clock::now() + 900s;
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline || !fleet.running()) {
      std::cerr << "fleet did not come up:\n" << fleet.log().substr(0, 4000) << "\n";
      return 1;
    }
    const std::string log = fleet.log();
    if (log.find("\"fleet\":\"ready\"") != std::string::npos) {
      std::istringstream in(log);
      std::string l;
      while (std::getline(in, l)) {
        if (l.empty() || l[0] != '{') continue;
        try {
          json j = json::parse(l);
          if (j.contains("uuid")) lines.push_back(j);
          if (j.contains("fleet")) fleet_cert = j.value("mtls_cert", "disabled");
        } catch (const std::exception&) {
        }
      }
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  std::cerr << "fleet ready: " << lines.size() << " agents\n";

  auto store = kl::storage::open_verifier_store("sqlite", dir.path());
  kl::loop::EventLoop loop(1);
  kl::loop::WorkerPool workers(workers_n);
  kl::http::AsyncClientOptions o;
  o.client_cert_file = settings.client_cert.string();
  o.client_key_file = settings.client_key.string();
  o.ca_files = {settings.trusted_server_ca.at(0).string()};
  const std::string max_idle = arg(argc, argv, "max-idle", "");
  if (!max_idle.empty()) o.max_idle_connections = std::stoul(max_idle);
  kl::http::AsyncClient client(loop, o);
  auto log = kl::log::make_logger("bench-verifier", {{"KEYLIME_LOG_LEVEL", "ERROR"}});
  kl::verifier::Poller poller(settings, *store, loop, client, workers, log);
  kl::verifier::VerifierService service(settings, *store, &poller, nullptr, log);

  const long rss_before = rss_kb();
  const std::size_t heap_before = mallinfo2().uordblks;
  const auto add_start = std::chrono::steady_clock::now();
  std::size_t added = 0;
  for (const auto& l : lines) {
    json body{{"v", nullptr},
              {"cloudagent_ip", l["address"]},
              {"cloudagent_port", l["port"]},
              {"tpm_policy", "{\"15\": [\"" + kZero + "\"], \"mask\": \"0x8000\"}"},
              {"runtime_policy", ""},
              {"runtime_policy_name", nullptr},
              {"mb_policy", nullptr},
              {"mb_policy_name", nullptr},
              {"ima_sign_verification_keys", ""},
              {"metadata", "{}"},
              {"revocation_key", ""},
              {"accept_tpm_hash_algs", {"sha256"}},
              {"accept_tpm_encryption_algs", {"ecc", "rsa"}},
              {"accept_tpm_signing_algs", {"ecdsa", "rsassa"}},
              {"ak_tpm", l["aik_tpm"]},
              {"mtls_cert", fleet_cert},
              {"supported_version", "2.6"}};
    kl::http::Request r;
    r.method = "POST";
    r.path = r.target = "/v2.6/agents/" + l["uuid"].get<std::string>();
    r.body = body.dump();
    r.tls = true;
    r.peer = kl::http::PeerCertificate{true, "bench", ""};
    if (service.handle(r).status == 200) ++added;
  }
  const double add_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - add_start).count();
  if (added != lines.size()) std::cerr << (lines.size() - added) << " agents could not be added\n";
  std::cerr << "added " << added << " agents in " << add_s << " s; warming up " << warmup << " s\n";

  // The first round opens every connection (a full TLS handshake each with mTLS: ~1-2 ms of CPU on each side),
  // so the window starts only once every agent has been verified once, plus `warmup` seconds to settle.
  const auto first_round_start = std::chrono::steady_clock::now();
  const auto give_up = first_round_start + std::chrono::seconds(900);
  // Every agent has had its connection opened ...
  while (client.connections_opened() < added && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(100ms);
  // ... and a full round's worth of quotes has been verified since (the last handshakes are done).
  const auto verified_at_open = poller.stats().quotes_verified;
  while (poller.stats().quotes_verified < verified_at_open + added && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(100ms);
  const double first_round_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - first_round_start).count();
  std::cerr << "first round (every agent connected and verified once) took " << first_round_s << " s\n";
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const auto s0 = poller.stats();
  const double cpu0 = cpu_seconds();
  const double fleet_cpu0 = process_cpu_seconds(fleet.pid());
  const std::size_t conns0 = client.connections_opened();
  const auto t0 = std::chrono::steady_clock::now();
  // Per-second verified counts show stalls (e.g. CPU taken by other processes) that an average hides.
  std::vector<std::uint64_t> per_second;
  {
    std::uint64_t last = s0.quotes_verified;
    auto next = t0 + 1s;
    while (next <= t0 + std::chrono::duration<double>(seconds)) {
      std::this_thread::sleep_until(next);
      const auto now_verified = poller.stats().quotes_verified;
      per_second.push_back(now_verified - last);
      last = now_verified;
      next += 1s;
    }
    std::this_thread::sleep_until(t0 + std::chrono::duration<double>(seconds));
  }
  const auto s1 = poller.stats();
  const double cpu1 = cpu_seconds();
  const double fleet_cpu1 = process_cpu_seconds(fleet.pid());
  const std::size_t conns1 = client.connections_opened();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long rss_after = rss_kb();
  const std::size_t heap_after = mallinfo2().uordblks;

  kl::verifier::PollerStats window = s1;
  for (std::size_t i = 0; i < window.lateness_10ms.size(); ++i) window.lateness_10ms[i] -= s0.lateness_10ms[i];
  const double verified = static_cast<double>(s1.quotes_verified - s0.quotes_verified);
  const double expected = static_cast<double>(added) / interval;

  std::printf("bench_verifier: agents=%zu interval=%.2fs window=%.1fs workers=%u mtls=%s\n", added, interval, wall,
              workers_n, mtls ? "yes" : "no");
  std::printf("  agents polled:            %zu (first round: %.1f s)\n", s1.agents, first_round_s);
  std::printf("  quotes verified/s:        %.1f (target for this fleet: %.1f)\n", verified / wall, expected);
  std::printf("  verified per second:     ");
  for (auto n : per_second) std::printf(" %llu", static_cast<unsigned long long>(n));
  std::printf("\n");
  std::printf("  quotes failed in window:  %llu, transport errors: %llu (before the window: %llu)\n",
              static_cast<unsigned long long>(s1.quotes_failed - s0.quotes_failed),
              static_cast<unsigned long long>(s1.transport_errors - s0.transport_errors),
              static_cast<unsigned long long>(s0.transport_errors));
  std::printf("  poll lateness p50/p99:    %.0f ms / %.0f ms\n", window.lateness_quantile_ms(0.50),
              window.lateness_quantile_ms(0.99));
  std::printf("  verifier CPU:             %.1f%% of one core (%.1f us per verified quote)\n",
              100.0 * (cpu1 - cpu0) / wall, verified > 0 ? 1e6 * (cpu1 - cpu0) / verified : 0.0);
  // Little's law: requests in flight = rate x mean time from request to verdict (network + both processes' queues).
  const double in_flight =
      static_cast<double>(s1.quotes_requested - s1.quotes_verified - s1.quotes_failed - s1.transport_errors);
  std::printf("  in flight at the end:     %.0f (mean request-to-verdict time %.0f ms)\n", in_flight,
              verified > 0 ? 1000.0 * in_flight / (verified / wall) : 0.0);
  std::printf("  verification queue:       %zu responses waiting for a worker\n", workers.queued());
  std::printf("  fleet CPU:                %.1f%% of one core\n", 100.0 * (fleet_cpu1 - fleet_cpu0) / wall);
  std::printf("  connections opened:       %zu in window (%zu idle pooled now)\n", conns1 - conns0,
              client.idle_connections());
  std::printf("  verifier RSS:             %ld KB total, %.2f KB per agent\n", rss_after,
              added ? static_cast<double>(rss_after - rss_before) / static_cast<double>(added) : 0.0);
  std::printf("  verifier heap in use:     %.2f KB per agent (malloc'd and not freed; RSS also holds freed, fragmented memory)\n",
              added ? (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / 1024.0 / static_cast<double>(added) : 0.0);
  std::fflush(stdout);

  poller.shutdown();
  loop.stop();
  return 0;
}
