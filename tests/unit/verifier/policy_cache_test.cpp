// The verifier's policy cache over a real SQLite store: one compiled policy per content, weak ownership,
// invalidation by name.
#include <catch2/catch.hpp>

#include "common/service/storage/verifier_store.hpp"
#include "support/temp_dir.hpp"
#include "verifier/policy_cache.hpp"

using namespace kl::verifier;

namespace {
kl::storage::RuntimePolicy policy_row(const std::string& name, const std::string& digest_path) {
  kl::storage::RuntimePolicy p;
  p.name = name;
  p.ima_policy = nlohmann::json{{"meta", {{"version", 1}, {"generator", 3}}},
                                {"release", 0},
                                {"digests", {{digest_path, {std::string(64, 'a')}}}},
                                {"excludes", nlohmann::json::array()},
                                {"keyrings", nlohmann::json::object()},
                                {"ima", {{"ignored_keyrings", nlohmann::json::array()}, {"log_hash_alg", "sha1"},
                                         {"dm_policy", nullptr}}},
                                {"ima-buf", nlohmann::json::object()},
                                {"verification-keys", ""}}
                     .dump();
  p.generator = 3;
  return p;
}
}  // namespace

TEST_CASE("policy cache: shared while held, released when no agent holds it, refreshed after invalidation") {
  kl::testing::TempDir dir;
  auto store = kl::storage::open_verifier_store("sqlite", dir.path());
  const long long a = store->insert_runtime_policy(policy_row("a", "/bin/a"));
  const long long same = store->insert_runtime_policy(policy_row("same-as-a", "/bin/a"));
  PolicyCache cache(*store);

  auto p1 = cache.runtime_policy(a);
  auto p2 = cache.runtime_policy(a);
  auto p3 = cache.runtime_policy(same);
  CHECK(p1 == p2);
  CHECK(p1 == p3);   // identical content: one compiled form
  CHECK(cache.stats().runtime_compiles == 1);
  CHECK(p1->digests().find("/bin/a"));

  // Update row "a": invalidated by name, the next lookup compiles the new text; holders of the old keep it.
  auto updated = policy_row("a", "/bin/b");
  REQUIRE(store->update_runtime_policy(updated));
  const auto gen = cache.generation();
  cache.invalidate_runtime("a");
  CHECK(cache.generation() == gen + 1);
  auto p4 = cache.runtime_policy(a);
  CHECK(p4 != p1);
  CHECK(p4->digests().find("/bin/b"));
  CHECK_FALSE(p4->digests().find("/bin/a"));
  CHECK(cache.runtime_policy(same) == p1);   // the other name still has the old content
  CHECK(cache.stats().runtime_compiles == 2);

  // Weak ownership: once nobody holds a policy it is gone, and a new lookup compiles again.
  p1.reset();
  p2.reset();
  p3.reset();
  CHECK(cache.stats().runtime_live == 1);
  (void)cache.runtime_policy(same);
  CHECK(cache.stats().runtime_compiles == 3);

  // No row / NULL text: the empty policy; a missing row id throws.
  auto empty = cache.runtime_policy(std::nullopt);
  CHECK(empty->generator() == 1);
  kl::storage::RuntimePolicy null_row;
  null_row.name = "agent-x";
  null_row.generator = 1;
  const long long nid = store->insert_runtime_policy(null_row);
  CHECK(cache.runtime_policy(nid) == empty);
  CHECK_THROWS_AS(cache.runtime_policy(99999), std::runtime_error);
}

TEST_CASE("policy cache: measured-boot policies parsed once, NULL means none") {
  kl::testing::TempDir dir;
  auto store = kl::storage::open_verifier_store("sqlite", dir.path());
  const long long id = store->insert_mb_policy(kl::storage::MbPolicy{0, "mb", std::string("{\"pk\": []}")});
  const long long none = store->insert_mb_policy(kl::storage::MbPolicy{0, "none", std::nullopt});
  const long long empty = store->insert_mb_policy(kl::storage::MbPolicy{0, "empty", std::string("{}")});
  PolicyCache cache(*store);
  auto m = cache.mb_policy(id);
  REQUIRE(m);
  CHECK(m->valid);
  CHECK(m->nonempty);
  CHECK(m->refstate.value.contains("pk"));
  CHECK(cache.mb_policy(id) == m);
  CHECK(cache.stats().mb_parses == 1);
  CHECK(cache.mb_policy(none) == nullptr);
  CHECK(cache.mb_policy(std::nullopt) == nullptr);
  auto e = cache.mb_policy(empty);
  REQUIRE(e);
  CHECK(e->valid);
  CHECK_FALSE(e->nonempty);   // {} = accept-all: nothing is checked
  REQUIRE(store->update_mb_policy(kl::storage::MbPolicy{0, "mb", std::string("{\"kek\": []}")}));
  cache.invalidate_mb("mb");
  CHECK(cache.mb_policy(id)->refstate.value.contains("kek"));
  CHECK(make_mb_policy_data(std::string("not json")).present);
  CHECK_FALSE(make_mb_policy_data(std::string("not json")).valid);
}

TEST_CASE("policy cache: invalidate_all (SIGHUP) re-reads every row, e.g. one rewritten by another verifier") {
  kl::testing::TempDir dir;
  auto store = kl::storage::open_verifier_store("sqlite", dir.path());
  const long long a = store->insert_runtime_policy(policy_row("a", "/bin/a"));
  const long long b = store->insert_runtime_policy(policy_row("b", "/bin/b"));
  PolicyCache cache(*store);
  auto pa = cache.runtime_policy(a);
  auto pb = cache.runtime_policy(b);
  // Another process rewrites row "a" behind this cache's back: no invalidation by name reaches us.
  REQUIRE(store->update_runtime_policy(policy_row("a", "/bin/a2")));
  CHECK(cache.runtime_policy(a) == pa);   // still the cached link
  const auto gen = cache.generation();
  cache.invalidate_all();
  CHECK(cache.generation() == gen + 1);
  auto pa2 = cache.runtime_policy(a);
  CHECK(pa2 != pa);
  CHECK(pa2->digests().find("/bin/a2"));
  CHECK(cache.runtime_policy(b) == pb);   // unchanged text: found again by content, not recompiled
  CHECK(cache.stats().runtime_compiles == 3);
}
