// Crash safety of keylime_registrar: a registration storm while the process is killed with SIGKILL at random
// moments and restarted, several times. Every registration the registrar acknowledged (200) must be in the
// database afterwards with the AK it was given, and every acknowledged activation must be active; the SQLite
// file must pass integrity_check.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "integration/hostile/deployment.hpp"

using namespace std::chrono_literals;

namespace {

struct Acked {
  std::string aik_tpm;   // base64 as sent
  bool activated = false;
};

struct Row {
  std::string aik_tpm;
  int active = -1;
};

std::map<std::string, Row> read_rows(const std::filesystem::path& db_file, std::string& integrity) {
  std::map<std::string, Row> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    integrity = "cannot open";
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  if (st && sqlite3_step(st) == SQLITE_ROW) integrity = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT agent_id, aik_tpm, active FROM registrarmain", -1, &st, nullptr);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    auto text = [&](int i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
    };
    rows[text(0)] = Row{text(1), sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2)};
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

}  // namespace

TEST_CASE("registrar crash safety: SIGKILL during a registration storm loses no acknowledged registration",
          "[crash]") {
  hostile::DeploymentOptions o;
  o.with_verifier = false;
  hostile::Deployment d(o);

  std::mutex mu;
  std::map<std::string, Acked> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0}, transport_errors{0};
  const std::uint16_t port = d.registrar_port();

  auto storm = [&](int worker) {
    int n = 0;
    while (!stop) {
      const std::string id = "crash-" + std::to_string(worker) + "-" + std::to_string(n++);
      kl::testing::SoftwareAgent agent;
      kl::testing::RegisterOptions ro;
      ro.agent_id = id;
      const std::string aik = kl::base64_encode(agent.ak_tpm2b_public());
      ++attempts;
      try {
        kl::http::Client client("127.0.0.1", port, kl::http::ClientOptions{std::nullopt, 3000ms});
        auto out = kl::testing::register_and_activate(client, agent, ro);
        std::lock_guard lock(mu);
        if (out.register_status == 200) acked[id] = Acked{aik, out.activate_status == 200};
      } catch (const std::exception&) {
        // Killed mid-exchange: this registration's outcome is unknown, so nothing is claimed for it. If the POST
        // was acknowledged before the PUT failed we cannot know, as a real agent would not either.
        ++transport_errors;
        std::this_thread::sleep_for(20ms);
      }
    }
  };

  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) workers.emplace_back(storm, w);
  std::mt19937 rng(12345);
  const int kKills = 12;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 600));
    ::kill(d.registrar_process().pid(), SIGKILL);
    CHECK(d.registrar_process().wait() == 128 + SIGKILL);
    d.drop_registrar();
    d.start_registrar();
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : workers) t.join();
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Stop cleanly (SIGTERM) and read the file the registrar leaves behind.
  d.drop_registrar();
  std::string integrity;
  const auto rows = read_rows(d.registrar_db(), integrity);
  CHECK(integrity == "ok");

  std::size_t missing = 0, wrong_ak = 0, not_active = 0, activated = 0;
  for (const auto& [id, a] : acked) {
    auto it = rows.find(id);
    if (it == rows.end()) {
      ++missing;
      UNSCOPED_INFO("acknowledged but missing: " << id);
      continue;
    }
    if (it->second.aik_tpm != a.aik_tpm) ++wrong_ak;
    if (a.activated) {
      ++activated;
      if (it->second.active != 1) ++not_active;
    }
  }
  INFO(attempts << " attempts, " << acked.size() << " acknowledged (" << activated << " activated), "
                << transport_errors << " cut by a kill, " << rows.size() << " rows, " << kKills << " kills in "
                << elapsed << " s");
  CHECK(acked.size() >= 20);
  CHECK(transport_errors >= 1);
  CHECK(missing == 0);
  CHECK(wrong_ak == 0);
  CHECK(not_active == 0);
  // Rows the registrar never acknowledged may exist (killed after the commit, before the answer), but every
  // row must be one of ours.
  std::size_t foreign = 0;
  for (const auto& [id, r] : rows) foreign += id.rfind("crash-", 0) == 0 ? 0 : 1;
  CHECK(foreign == 0);
  WARN("crash: " << acked.size() << " acknowledged registrations survived " << kKills << " SIGKILLs (" << elapsed
                 << " s)");
}
