// Agent leases on a real PostgreSQL server: two LeaseStore instances (two verifiers, each with its own
// connection pool) never hold the same agent at the same time.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/service/storage/lease_store.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "support/pg_server.hpp"

using namespace kl::storage;
using namespace std::chrono_literals;

namespace {

std::string fleet_db(int agents) {
  const std::string url = kl::testing::shared_pg_server().create_database();
  auto store = open_verifier_store(url, "/k");
  for (int i = 0; i < agents; ++i) {
    VerifierAgent a;
    a.agent_id = "agent-" + std::to_string(1000 + i);
    a.operational_state = 3;
    store->add_agent(a, std::nullopt, std::nullopt);
  }
  return url;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("leases: claim, expiry, renew, release between two verifiers", "[storage][lease]") {
  if (kl::testing::pg_skipped()) return;
  const std::string url = fleet_db(50);
  auto a = open_lease_store(url, "/k", StoreOptions{1});
  auto b = open_lease_store(url, "/k", StoreOptions{1});

  const auto got_a = a->claim("verifier-a", 400ms, 30);
  CHECK(got_a.size() == 30);
  const auto got_b = b->claim("verifier-b", 400ms, 100);
  CHECK(got_b.size() == 20);  // only the free ones
  std::set<std::string> all = as_set(got_a);
  for (const auto& id : got_b) CHECK(all.insert(id).second);
  CHECK(all.size() == 50);
  CHECK(b->claim("verifier-b", 400ms, 100).empty());
  CHECK(a->held_by("verifier-a").size() == 30);
  CHECK(a->held_by("verifier-a").front().owner == "verifier-a");

  // a keeps 10 alive and releases 5; after the TTL b can take a's other 15 (not the renewed ones).
  const std::vector<std::string> keep(got_a.begin(), got_a.begin() + 10);
  const std::vector<std::string> drop(got_a.begin() + 10, got_a.begin() + 15);
  CHECK(a->release("verifier-a", drop) == 5);
  CHECK(b->release("verifier-b", keep) == 0);  // not b's to release
  CHECK(as_set(b->claim("verifier-b", 400ms, 100)) == as_set(drop));
  std::this_thread::sleep_for(250ms);
  CHECK(as_set(a->renew("verifier-a", keep, 2000ms)) == as_set(keep));
  std::vector<std::string> b_all = got_b;
  b_all.insert(b_all.end(), drop.begin(), drop.end());
  CHECK(b->renew("verifier-b", b_all, 2000ms).size() == 25);
  std::this_thread::sleep_for(250ms);  // a's unrenewed 15 expired now
  const auto taken = b->claim("verifier-b", 2000ms, 100);
  CHECK(taken.size() == 15);
  for (const auto& id : taken) CHECK(!as_set(keep).count(id));
  // a has lost those: renewing them gives nothing back.
  CHECK(a->renew("verifier-a", std::vector<std::string>(got_a.begin() + 15, got_a.end()), 2000ms).empty());
  CHECK(a->held_by("verifier-a").size() == 10);
  CHECK(b->held_by("verifier-b").size() == 40);

  // Deleting an agent drops its lease.
  auto store = open_verifier_store(url, "/k");
  CHECK(store->remove_agent(keep.front()));
  CHECK(a->held_by("verifier-a").size() == 9);

  // Ids needing escaping in the array literal.
  CHECK(a->renew("verifier-a", {"x\"y", "a\\b", "{,}"}, 100ms).empty());
  CHECK_THROWS_AS(open_lease_store("sqlite", "/k"), StorageError);
}

TEST_CASE("leases: two verifiers racing never hold one agent at the same time", "[storage][lease]") {
  if (kl::testing::pg_skipped()) return;
  constexpr int kAgents = 60;
  const std::string url = fleet_db(kAgents);
  constexpr auto kTtl = 150ms;

  // Each owner records the interval during which it believes it holds a lease: from the end of the call
  // that claimed / renewed it to (start of that call + TTL), which lies inside the real lease.
  struct Belief {
    std::string owner;
    std::chrono::steady_clock::time_point from, to;
  };
  std::mutex mu;
  std::map<std::string, std::vector<Belief>> beliefs;
  std::atomic<bool> stop{false};
  std::atomic<int> claims{0};

  auto run = [&](const std::string& owner) {
    auto leases = open_lease_store(url, "/k", StoreOptions{2});
    std::vector<std::string> mine;
    unsigned round = 0;
    while (!stop) {
      const auto t0 = std::chrono::steady_clock::now();
      auto renewed = leases->renew(owner, mine, kTtl);
      auto fresh = leases->claim(owner, kTtl, 8);
      const auto t1 = std::chrono::steady_clock::now();
      claims += static_cast<int>(fresh.size());
      mine = renewed;
      mine.insert(mine.end(), fresh.begin(), fresh.end());
      {
        std::lock_guard lk(mu);
        for (const auto& id : mine) beliefs[id].push_back({owner, t1, t0 + kTtl});
      }
      // Now and then give some up, or stall past the TTL (as a stuck verifier would).
      if (++round % 7 == 0 && !mine.empty()) {
        // The belief in a released lease ends before the release is sent.
        {
          std::lock_guard lk(mu);
          const auto now = std::chrono::steady_clock::now();
          for (auto& b : beliefs[mine.back()])
            if (b.owner == owner) b.to = std::min(b.to, now);
        }
        leases->release(owner, {mine.back()});
        mine.pop_back();
      }
      std::this_thread::sleep_for(round % 11 == 0 ? kTtl + 50ms : 20ms);
    }
  };
  std::thread ta(run, "verifier-a"), tb(run, "verifier-b");
  std::this_thread::sleep_for(2500ms);
  stop = true;
  ta.join();
  tb.join();

  CHECK(claims.load() > kAgents);  // leases did change hands
  std::size_t overlaps = 0, intervals = 0, shared_agents = 0;
  for (auto& [id, list] : beliefs) {
    std::set<std::string> owners;
    for (const auto& x : list) owners.insert(x.owner);
    if (owners.size() > 1) ++shared_agents;
    for (size_t i = 0; i < list.size(); ++i) {
      ++intervals;
      for (size_t j = i + 1; j < list.size(); ++j)
        if (list[i].owner != list[j].owner && list[i].from < list[j].to && list[j].from < list[i].to) ++overlaps;
    }
  }
  INFO(intervals << " lease intervals, " << shared_agents << " agents held by both at different times");
  CHECK(shared_agents > 0);
  CHECK(overlaps == 0);
}
