#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "common/service/storage/verifier_store.hpp"
#include "support/temp_dir.hpp"
#include "test_backend.hpp"

using namespace kl::storage;
using storage_test::storage_backends;
using storage_test::TestDb;
namespace fs = std::filesystem;

namespace {

const char* kSampleId = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";

std::string q(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  std::string out = "<no row>";
  if (sqlite3_step(s) == SQLITE_ROW) {
    const auto* t = sqlite3_column_text(s, 0);
    out = t ? reinterpret_cast<const char*>(t) : "NULL";
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

VerifierAgent agent(const std::string& id, const std::string& verifier = "default") {
  VerifierAgent a;
  a.agent_id = id;
  a.v = "dmFsdWU=";
  a.ip = "127.0.0.1";
  a.port = 9002;
  a.operational_state = 1;
  a.tpm_policy = R"("{\"mask\": \"0x400\"}")";
  a.meta_data = "{}";
  a.accept_tpm_hash_algs = R"(["sha512", "sha384", "sha256"])";
  a.verifier_id = verifier;
  a.verifier_ip = "127.0.0.1";
  a.verifier_port = 8881;
  a.ima_pcrs = "[10]";
  a.pcr10 = kl::Bytes{0x00, 0x01, 0xff, 0x00};
  a.next_ima_ml_entry = 0;
  a.supported_version = "2.1";
  a.attestation_count = 0;
  return a;
}

}  // namespace

TEST_CASE("verifier store: upstream's cv_data.sqlite read in place", "[storage]") {
  kl::testing::TempDir t;
  const fs::path file = t.path() / "cv_data.sqlite";
  fs::copy_file(fs::path(KL_TESTDATA_DIR) / "keylime-db" / "cv_data.sqlite", file);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  const std::string schema = "SELECT group_concat(sql, ';') FROM sqlite_master";
  const std::string schema_before = q(file, schema);

  auto store = open_verifier_store("sqlite", t.path());
  const auto agents = store->load_agents(std::nullopt);
  REQUIRE(agents.size() == 1);
  const auto& a = agents[0];
  CHECK(a.agent_id == kSampleId);
  CHECK(a.operational_state == std::optional<int>(3));
  CHECK(a.attestation_count == std::optional<long long>(3));
  CHECK(a.hash_alg == std::optional<std::string>("sha256"));
  CHECK(a.sign_alg == std::optional<std::string>("rsassa"));
  CHECK(a.supported_version == std::optional<std::string>("2.1"));
  CHECK(a.verifier_id == std::optional<std::string>("default"));
  CHECK(a.accept_attestations);
  CHECK(a.ima_pcrs == std::optional<std::string>("[10]"));
  CHECK(a.next_ima_ml_entry == std::optional<long long>(51));
  CHECK(a.tpm_policy == std::optional<std::string>(R"("{\"mask\": \"0x400\"}")"));
  CHECK_FALSE(a.severity_level.has_value());
  CHECK_FALSE(a.last_event_id.has_value());
  REQUIRE(a.pcr10.has_value());
  CHECK(a.pcr10->size() == 32);
  CHECK(kl::hex_encode(*a.pcr10) == q(file, "SELECT lower(hex(pcr10)) FROM verifiermain"));
  CHECK(a.ima_policy_id == std::optional<long long>(1));
  CHECK(a.mb_policy_id == std::optional<long long>(1));
  CHECK(store->list_agent_ids("default") == std::vector<std::string>{kSampleId});
  CHECK(store->list_agent_ids("other").empty());
  CHECK(store->find_agent(kSampleId) == a);

  const auto rp = store->find_runtime_policy(kSampleId);
  REQUIRE(rp.has_value());
  CHECK(rp->id == 1);
  CHECK(rp->generator == std::optional<int>(3));
  REQUIRE(rp->ima_policy.has_value());
  CHECK(rp->ima_policy->size() == 4786);
  CHECK(rp->checksum->rfind("bfa0ec9c", 0) == 0);
  CHECK_FALSE(rp->tpm_policy.has_value());
  CHECK(store->find_runtime_policy_by_id(1) == rp);
  const auto mb = store->find_mb_policy(kSampleId);
  REQUIRE(mb.has_value());
  CHECK_FALSE(mb->mb_policy.has_value());
  CHECK(store->list_mb_policy_names() == std::vector<std::string>{kSampleId});

  // The policy is in use: refusing to delete it is the foreign key upstream relies on.
  CHECK_THROWS_AS(store->remove_runtime_policy(kSampleId), PolicyInUse);

  // Writing upstream's row back unchanged leaves it byte-identical.
  const std::string row = "SELECT quote(v)||quote(pcr10)||quote(tpm_policy)||quote(accept_attestations)||"
                          "quote(severity_level)||quote(tpm_clockinfo) FROM verifiermain";
  const std::string row_before = q(file, row);
  CHECK(store->update_agent(a));
  CHECK(q(file, row) == row_before);

  // Deleting the agent takes the policies named after it along.
  CHECK(store->remove_agent(kSampleId));
  CHECK_FALSE(store->find_agent(kSampleId).has_value());
  CHECK(store->list_runtime_policy_names().empty());
  CHECK(store->list_mb_policy_names().empty());
  CHECK_FALSE(store->remove_agent(kSampleId));
  CHECK(q(file, schema) == schema_before);
}

TEST_CASE("verifier store: fresh database matches upstream's schema", "[storage]") {
  kl::testing::TempDir t;
  open_verifier_store("sqlite", t.path());
  const fs::path sample = fs::path(KL_TESTDATA_DIR) / "keylime-db" / "cv_data.sqlite";
  const std::string sql = "SELECT group_concat(type || ' ' || name || ' ' || ifnull(sql, ''), ';') FROM "
                          "(SELECT * FROM sqlite_master ORDER BY name)";
  // Read the sample through a copy: opening the shared read-only file is not needed for the comparison.
  fs::copy_file(sample, t.path() / "sample.sqlite");
  CHECK(q(t.path() / "cv_data.sqlite", sql) == q(t.path() / "sample.sqlite", sql));
  CHECK(q(t.path() / "cv_data.sqlite", "SELECT version_num FROM alembic_version_cloud_verifier") == "a59cc9366774");
}

TEST_CASE("verifier store: fresh PostgreSQL database has upstream's tables and types", "[storage]") {
  if (kl::testing::pg_skipped()) return;
  TestDb db("postgresql", "");
  open_verifier_store(db.url(), "/k");
  CHECK(db.query("SELECT version_num FROM alembic_version_cloud_verifier") == "a59cc9366774");
  CHECK(db.query("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
                 "WHERE table_schema = 'public'") ==
        "alembic_version_cloud_verifier,allowlists,attestations,evidence_items,mbpolicies,sessions,verifiermain");
  auto type_of = [&](const std::string& table, const std::string& col) {
    return db.query("SELECT data_type || coalesce('(' || character_maximum_length || ')', '') || is_nullable "
                    "FROM information_schema.columns WHERE table_name = '" + table + "' AND column_name = '" + col + "'");
  };
  CHECK(type_of("verifiermain", "agent_id") == "character varying(80)NO");
  CHECK(type_of("verifiermain", "pcr10") == "byteaYES");
  CHECK(type_of("verifiermain", "accept_attestations") == "booleanNO");
  CHECK(type_of("verifiermain", "tpm_policy") == "textYES");
  CHECK(type_of("verifiermain", "mtls_cert") == "character varying(2084)YES");
  CHECK(type_of("verifiermain", "boottime") == "integerYES");
  CHECK(type_of("allowlists", "id") == "integerNO");
  CHECK(type_of("allowlists", "checksum") == "character varying(128)YES");
  CHECK(type_of("sessions", "nonce") == "byteaYES");
  CHECK(db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'verifiermain'") == "38");
  CHECK(db.query("SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint "
                 "WHERE conrelid = 'verifiermain'::regclass AND contype = 'f'") ==
        "fk_verifiermain_allowlists,fk_verifiermain_mbpolicies");
  CHECK(db.query("SELECT count(*) FROM pg_indexes WHERE indexname IN ('ix_allowlists_checksum', 'ix_sessions_agent_id')") == "2");
}

TEST_CASE("verifier store: agents and policies round trip", "[storage]") {
  TestDb db(GENERATE(from_range(storage_backends())), "cv.sqlite");
  INFO("backend " << db.backend());
  auto store = open_verifier_store(db.url(), db.dir());

  RuntimePolicy rp;
  rp.name = "a1";
  rp.ima_policy = R"({"meta": {"version": 1}})";
  rp.checksum = "abc";
  rp.generator = 3;
  MbPolicy mb;
  mb.name = "a1";
  mb.mb_policy = std::nullopt;
  const auto stored = store->add_agent(agent("a1"), rp, mb);
  REQUIRE(stored.ima_policy_id.has_value());
  REQUIRE(stored.mb_policy_id.has_value());
  CHECK(store->find_runtime_policy_by_id(*stored.ima_policy_id)->name == "a1");
  CHECK(store->find_mb_policy_by_id(*stored.mb_policy_id)->name == "a1");
  CHECK(store->find_agent("a1") == stored);
  if (db.is_pg())
    CHECK(db.query("SELECT encode(pcr10, 'hex') || ':' || accept_attestations::text || ':' || "
                   "(severity_level IS NULL)::text FROM verifiermain") == "0001ff00:true:true");
  else
    CHECK(db.query("SELECT typeof(pcr10) || typeof(accept_attestations) || accept_attestations || "
                   "typeof(severity_level) FROM verifiermain") == "blobinteger1null");

  SECTION("duplicates roll the whole add back") {
    RuntimePolicy rp2 = rp;
    rp2.name = "fresh";
    CHECK_THROWS_AS(store->add_agent(agent("a1"), rp2, std::nullopt), DuplicateAgent);
    CHECK_FALSE(store->find_runtime_policy("fresh").has_value());
    CHECK_THROWS_AS(store->add_agent(agent("a2"), rp, std::nullopt), DuplicatePolicy);
    CHECK_FALSE(store->find_agent("a2").has_value());
    CHECK_THROWS_AS(store->insert_runtime_policy(rp), DuplicatePolicy);
    CHECK_THROWS_AS(store->insert_mb_policy(mb), DuplicatePolicy);
  }
  SECTION("an agent pointing at a missing policy is refused") {
    auto b = agent("b");
    b.ima_policy_id = 999;
    CHECK_THROWS_AS(store->add_agent(b, std::nullopt, std::nullopt), StorageError);
    CHECK_FALSE(store->find_agent("b").has_value());
  }
  SECTION("batch update, verifier_id filter") {
    store->add_agent(agent("a2", "other"), std::nullopt, std::nullopt);
    auto a1 = *store->find_agent("a1");
    auto a2 = *store->find_agent("a2");
    a1.operational_state = 3;
    a1.attestation_count = 17;
    a1.severity_level = 5;
    a1.last_event_id = "ima.validation.ima-ng.not_in_allowlist";
    a1.accept_attestations = false;
    a2.pcr10 = std::nullopt;
    auto ghost = agent("ghost");
    CHECK(store->update_agents({a1, a2, ghost}) == 2);
    CHECK(store->find_agent("a1") == a1);
    CHECK(store->find_agent("a2") == a2);
    CHECK_FALSE(store->find_agent("ghost").has_value());
    CHECK(store->list_agent_ids("other") == std::vector<std::string>{"a2"});
    CHECK(store->load_agents("default").size() == 1);
    CHECK(store->load_agents(std::nullopt).size() == 2);
    using Counts = std::vector<std::pair<int, std::size_t>>;
    CHECK(store->count_by_state(std::nullopt) == Counts{{1, 1}, {3, 1}});
    CHECK(store->count_by_state("other") == Counts{{1, 1}});
    CHECK(store->count_by_state("nobody").empty());
  }
  SECTION("a batch with a dangling policy id is refused whole") {
    auto a1 = *store->find_agent("a1");
    auto bad = a1;
    a1.attestation_count = 99;
    bad.agent_id = "a1";
    bad.ima_policy_id = 4242;
    CHECK_THROWS_AS(store->update_agents({a1, bad}), StorageError);
    CHECK(store->find_agent("a1") == stored);
    // The store is still usable afterwards (the connection / transaction was cleaned up).
    CHECK(store->update_agents({a1}) == 1);
    CHECK(store->find_agent("a1")->attestation_count == std::optional<long long>(99));
  }
  SECTION("policy CRUD by name") {
    RuntimePolicy p;
    p.name = "shared";
    p.ima_policy = "{}";
    const long long id = store->insert_runtime_policy(p);
    CHECK(store->list_runtime_policy_names() == std::vector<std::string>{"a1", "shared"});
    p.ima_policy = R"({"digests": {}})";
    p.generator = 1;
    CHECK(store->update_runtime_policy(p));
    auto got = store->find_runtime_policy("shared");
    REQUIRE(got.has_value());
    CHECK(got->id == id);
    CHECK(got->ima_policy == p.ima_policy);
    CHECK(got->generator == std::optional<int>(1));
    p.name = "nope";
    CHECK_FALSE(store->update_runtime_policy(p));
    CHECK(store->remove_runtime_policy("shared"));
    CHECK_FALSE(store->remove_runtime_policy("shared"));
    MbPolicy m{0, "mb2", std::string("{\"x\": 1}")};
    store->insert_mb_policy(m);
    m.mb_policy = std::nullopt;
    CHECK(store->update_mb_policy(m));
    CHECK_FALSE(store->find_mb_policy("mb2")->mb_policy.has_value());
    CHECK(store->remove_mb_policy("mb2"));
    CHECK_THROWS_AS(store->remove_mb_policy("a1"), PolicyInUse);
  }
  SECTION("a policy named after a deleted agent but used by another stays") {
    auto b = agent("b");
    b.ima_policy_id = stored.ima_policy_id;
    store->add_agent(b, std::nullopt, std::nullopt);
    CHECK(store->remove_agent("a1"));
    CHECK(store->find_runtime_policy("a1").has_value());
    CHECK_FALSE(store->find_mb_policy("a1").has_value());
  }
  SECTION("reopen keeps everything") {
    store.reset();
    auto again = open_verifier_store(db.url(), db.dir());
    CHECK(again->find_agent("a1") == stored);
    CHECK(again->find_runtime_policy("a1")->ima_policy == rp.ima_policy);
  }
}
