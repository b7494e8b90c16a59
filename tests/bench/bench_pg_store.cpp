// Batch write throughput of the verifier store (update_agents, the verifier's single writer) on a private
// PostgreSQL server (support/pg_server) and, for comparison, on a SQLite file.
//
//   bench_pg_store [--agents N] [--rounds R] [--batch B] [--backend postgresql|sqlite|both]
//
// Each round rewrites every agent's row (state, counters, pcr10, ...) in batches of B through
// update_agents; prints agent rows written per second and the time per batch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/service/storage/verifier_store.hpp"
#include "support/pg_server.hpp"
#include "support/temp_dir.hpp"

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

kl::storage::VerifierAgent agent(int i) {
  kl::storage::VerifierAgent a;
  a.agent_id = "bench-agent-" + std::to_string(100000 + i);
  a.v = "dmFsdWU=";
  a.ip = "127.0.0.1";
  a.port = 9002;
  a.operational_state = 3;
  a.tpm_policy = R"("{\"mask\": \"0x400\"}")";
  a.meta_data = "{}";
  a.accept_tpm_hash_algs = R"(["sha256"])";
  a.verifier_id = "default";
  a.ima_pcrs = "[10]";
  a.pcr10 = kl::Bytes(32, 0xab);
  a.next_ima_ml_entry = 0;
  a.supported_version = "2.6";
  a.ak_tpm = std::string(376, 'A');
  a.mtls_cert = std::string(1200, 'M');
  a.attestation_count = 0;
  return a;
}

void run(const std::string& name, const std::string& url, int n, int rounds, int batch) {
  auto store = kl::storage::open_verifier_store(url, "/nonexistent");
  std::vector<kl::storage::VerifierAgent> agents;
  for (int i = 0; i < n; ++i) agents.push_back(store->add_agent(agent(i), std::nullopt, std::nullopt));
  std::vector<double> batch_ms;
  std::size_t written = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (int off = 0; off < n; off += batch) {
      const int end = std::min(n, off + batch);
      for (int i = off; i < end; ++i) {
        auto& a = agents[static_cast<std::size_t>(i)];
        a.attestation_count = a.attestation_count.value_or(0) + 1;
        a.last_received_quote = 1700000000 + r;
        a.next_ima_ml_entry = r * 10;
      }
      std::vector<kl::storage::VerifierAgent> b(agents.begin() + off, agents.begin() + end);
      const auto t0 = std::chrono::steady_clock::now();
      written += store->update_agents(b);
      batch_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(batch_ms.begin(), batch_ms.end());
  const auto check = store->find_agent(agents.back().agent_id);
  std::printf("%-10s agents=%d rounds=%d batch=%d: %zu rows in %.2f s = %.0f rows/s; batch p50 %.2f ms, p99 %.2f ms%s\n",
              name.c_str(), n, rounds, batch, written, secs, static_cast<double>(written) / secs,
              batch_ms[batch_ms.size() / 2], batch_ms[batch_ms.size() * 99 / 100],
              check && check->attestation_count == rounds ? "" : "  (VERIFY FAILED)");
}

}  // namespace

int main(int argc, char** argv) {
  const int n = std::stoi(arg(argc, argv, "agents", "10000"));
  const int rounds = std::stoi(arg(argc, argv, "rounds", "3"));
  const int batch = std::stoi(arg(argc, argv, "batch", "10000"));
  const std::string backend = arg(argc, argv, "backend", "both");
  try {
    if (backend == "postgresql" || backend == "both") {
      kl::testing::PgServer pg;
      run("postgresql", pg.create_database(), n, rounds, batch);
    }
    if (backend == "sqlite" || backend == "both") {
      kl::testing::TempDir t;
      run("sqlite", "sqlite:///" + (t.path() / "cv.sqlite").string(), n, rounds, batch);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_pg_store: %s\n", e.what());
    return 1;
  }
  return 0;
}
