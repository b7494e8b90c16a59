// Register + activate throughput of a running keylime_registrar with concurrent software agents, and the
// registrar's idle RSS. Usage: bench_registrar [clients=8] [agents_per_client=250] [log_level=INFO]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <vector>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "integration/registrar/running_registrar.hpp"

namespace {

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// utime + stime of a process in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stod(f);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kl::testing;
  const int clients = argc > 1 ? std::stoi(argv[1]) : 8;
  const int per_client = argc > 2 ? std::stoi(argv[2]) : 250;

  regitest::RegistrarOptions ro;
  // Third argument: the registrar's log level (INFO = one line per request, as deployed).
  ro.env["KEYLIME_LOG_LEVEL"] = argc > 3 ? argv[3] : "INFO";
  regitest::RunningRegistrar reg(ro);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long idle_rss = rss_kb(reg.pid());
  // BENCH_PAUSE=<seconds>: time to attach a profiler (perf record -p <pid>) before the run.
  if (const char* pause = std::getenv("BENCH_PAUSE")) {
    std::cout << "registrar pid " << reg.pid() << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(pause)));
  }

  std::cout << "generating " << clients * per_client << " software agents (ECC P-256 EK + AK)..." << std::endl;
  std::vector<std::vector<SoftwareAgent>> agents(clients);
  for (auto& v : agents) {
    v.reserve(per_client);
    for (int i = 0; i < per_client; ++i) v.emplace_back(SoftwareAgent::EkAlg::ecc_p256);
  }

  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> failures{0};
  const double cpu_before = cpu_seconds(reg.pid()), own_before = cpu_seconds(getpid());
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = reg.plain_client();
      for (int i = 0; i < per_client; ++i) {
        RegisterOptions o;
        o.agent_id = "bench-" + std::to_string(c) + "-" + std::to_string(i);
        const auto t0 = std::chrono::steady_clock::now();
        try {
          if (!register_and_activate(client, agents[c][i], o).ok()) ++failures;
        } catch (const std::exception& e) {
          ++failures;
        }
        latencies[c].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const int ops = clients * per_client;
  const long busy_rss = rss_kb(reg.pid());
  const double reg_cpu = cpu_seconds(reg.pid()) - cpu_before, client_cpu = cpu_seconds(getpid()) - own_before;

  std::cout << "registrar log level: " << ro.env["KEYLIME_LOG_LEVEL"] << "\n"
            << "clients: " << clients << ", register+activate: " << ops << ", failures: " << failures << "\n"
            << "throughput: " << static_cast<long>(ops / secs) << " register+activate/s (" << secs << " s)\n"
            << "latency per register+activate: p50 " << percentile(all, 0.50) << " ms, p99 " << percentile(all, 0.99)
            << " ms\n"
            << "CPU: registrar " << reg_cpu << " s (" << 1e6 * reg_cpu / ops << " us per register+activate), clients "
            << client_cpu << " s\n"
            << "registrar RSS: idle " << idle_rss / 1024.0 << " MB, after the run " << busy_rss / 1024.0 << " MB\n"
            << "(client and registrar share this machine's cores; the client does the TPM-side ECDH in software)\n";
  return failures == 0 ? 0 : 1;
}
