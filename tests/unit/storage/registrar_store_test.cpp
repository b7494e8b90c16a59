#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <thread>

#include "common/service/storage/database_url.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "support/temp_dir.hpp"
#include "support/process.hpp"
#include "test_backend.hpp"

using namespace kl::storage;
using storage_test::storage_backends;
using storage_test::TestDb;
namespace fs = std::filesystem;

namespace {

const char* kSampleId = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";

RegistrarAgent sample_agent(const std::string& id) {
  RegistrarAgent a;
  a.agent_id = id;
  a.key = "c2VjcmV0LWtleS1mb3ItaG1hYy0zMi1ieXRlcy0tLS0=";
  a.aik_tpm = "AAEACwAFAHIAAAAQ";
  a.ek_tpm = "AToAAQALAAMAsgAgg3GXZ";
  a.ekcert = "MIIDPzCCAiegAwIBAgIU";
  a.mtls_cert = "disabled";
  a.ip = "127.0.0.1";
  a.port = 9002;
  a.regcount = 1;
  return a;
}

// Runs one query on a separate raw connection and returns the first column of the first row as text
// ("NULL" for NULL): checks what another reader (upstream Keylime) would see on disk.
std::string query_text(const fs::path& db, const std::string& sql) {
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

fs::path copy_sample(const fs::path& dir, const std::string& name) {
  const fs::path dst = dir / name;
  fs::copy_file(fs::path(KL_TESTDATA_DIR) / "keylime-db" / name, dst);
  fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write);
  return dst;
}

}  // namespace

TEST_CASE("database_url resolution", "[storage]") {
  CHECK(sqlite_path_from_url("sqlite", "/var/lib/keylime", "reg_data.sqlite") == "/var/lib/keylime/reg_data.sqlite");
  CHECK(sqlite_path_from_url("\"sqlite\"", "/k", "cv_data.sqlite") == "/k/cv_data.sqlite");
  CHECK(sqlite_path_from_url("sqlite:////abs/db.sqlite", "/k", "x") == "/abs/db.sqlite");
  CHECK(sqlite_path_from_url("sqlite:///rel/db.sqlite?timeout=5", "/k", "x") == "rel/db.sqlite");
  CHECK(sqlite_path_from_url("sqlite://", "/k", "x") == ":memory:");
  CHECK_THROWS_WITH(sqlite_path_from_url("postgresql://u:p@127.0.0.1/keylime", "/k", "x"),
                    "not a SQLite database_url");
  CHECK_THROWS_WITH(sqlite_path_from_url("mysql://u@h/db", "/k", "x"), Catch::Contains("'mysql'"));
  CHECK_THROWS_AS(sqlite_path_from_url("sqlite:relative", "/k", "x"), StorageError);
  CHECK_THROWS_WITH(open_registrar_store("mysql://u@h/db", "/k"), Catch::Contains("'mysql'"));

  // PostgreSQL URLs as upstream's config takes them (SQLAlchemy): the driver suffix is dropped for libpq.
  using K = DatabaseLocation::Kind;
  auto pg = resolve_database_url("postgresql://keylime:s3cret@db.example:5433/keylime", "/k", "x");
  CHECK(pg.kind == K::postgresql);
  CHECK(pg.pg_conninfo == "postgresql://keylime:s3cret@db.example:5433/keylime");
  CHECK(resolve_database_url("postgresql+psycopg2://u@h/db?sslmode=require", "/k", "x").pg_conninfo ==
        "postgresql://u@h/db?sslmode=require");
  CHECK(resolve_database_url(" \"postgres://u@h/db\"", "/k", "x").pg_conninfo == "postgresql://u@h/db");
  CHECK(resolve_database_url("sqlite", "/k", "reg.sqlite").kind == K::sqlite);
  CHECK_THROWS_AS(resolve_database_url("postgresql://", "/k", "x"), StorageError);
  CHECK_THROWS_AS(resolve_database_url("postgresqlx://h/db", "/k", "x"), StorageError);

  auto pooled = resolve_database_url("postgresql://u@h/db?sslmode=disable&pool_size=7&connect_timeout=3", "/k", "x");
  CHECK(pooled.pg_conninfo == "postgresql://u@h/db?sslmode=disable&connect_timeout=3");
  CHECK(pooled.pg_pool_size == 7);
  CHECK(resolve_database_url("postgresql://u@h/db?pool_size=2", "/k", "x").pg_conninfo == "postgresql://u@h/db");
  CHECK(resolve_database_url("postgresql://u@h/db", "/k", "x").pg_pool_size == 0);
  CHECK_THROWS_AS(resolve_database_url("postgresql://u@h/db?pool_size=0", "/k", "x"), StorageError);
  // The config loaders fold database_pool_sz_ovfl into a PostgreSQL URL.
  CHECK(with_pool_size("postgresql://u@h/db", "5,10") == "postgresql://u@h/db?pool_size=5");
  CHECK(with_pool_size("postgresql://u@h/db?sslmode=require", "3,0") == "postgresql://u@h/db?sslmode=require&pool_size=3");
  CHECK(with_pool_size("postgresql://u@h/db?pool_size=9", "3,0") == "postgresql://u@h/db?pool_size=9");
  CHECK(with_pool_size("sqlite", "5,10") == "sqlite");
  CHECK(with_pool_size("postgresql://u@h/db", "") == "postgresql://u@h/db");
  CHECK_THROWS_AS(with_pool_size("postgresql://u@h/db", "zero"), StorageError);

  // Pool size from upstream's database_pool_sz_ovfl ("size,overflow").
  CHECK(pool_size_from_config("5,10") == 5);
  CHECK(pool_size_from_config("\"12, 3\"") == 12);
  CHECK(pool_size_from_config("2") == 2);
  for (const char* bad : {"", "0,10", "x,1", "-1,2", "5;10", "100000"}) {
    INFO(bad);
    CHECK_THROWS_AS(pool_size_from_config(bad), StorageError);
  }
}

TEST_CASE("fresh database: upstream schema, alembic stamp, round trips", "[storage]") {
  const std::string backend = GENERATE(from_range(storage_backends()));
  INFO("backend " << backend);
  kl::testing::TempDir t;
  const fs::path kdir = t.path() / "kl";  // created by the store, as upstream does
  std::unique_ptr<TestDb> pgdb;
  std::unique_ptr<RegistrarStore> store;
  if (backend == "postgresql") {
    pgdb = std::make_unique<TestDb>(backend, "");
    store = open_registrar_store(pgdb->url() + "?pool_size=3", kdir, StoreOptions{2});
    CHECK(pgdb->query("SELECT version_num FROM alembic_version_registrar") == "a59cc9366774");
    CHECK(store->stats().backend == "postgresql");
    CHECK(store->stats().pool_size == 3);  // the URL's option wins over StoreOptions
    CHECK(store->stats().connections_open == 3);
  } else {
    store = open_registrar_store("sqlite", kdir);
    REQUIRE(fs::exists(kdir / "reg_data.sqlite"));
    CHECK(query_text(kdir / "reg_data.sqlite", "SELECT version_num FROM alembic_version_registrar") == "a59cc9366774");
    CHECK(query_text(kdir / "reg_data.sqlite", "PRAGMA journal_mode") == "wal");
    CHECK(store->stats().backend == "sqlite");
  }
  const fs::path file = kdir / "reg_data.sqlite";

  CHECK_FALSE(store->find("nope").has_value());
  CHECK(store->list_ids().empty());

  auto a = sample_agent("agent-1");
  store->insert(a);
  auto got = store->find("agent-1");
  REQUIRE(got.has_value());
  CHECK(*got == a);
  CHECK_FALSE(got->active);
  CHECK_FALSE(got->virtual_flag.has_value());
  CHECK_FALSE(got->iak_tpm.has_value());

  SECTION("on disk it looks like upstream's rows: booleans 0/1, NULL where absent") {
    if (backend == "postgresql") {
      CHECK(pgdb->query("SELECT pg_typeof(active)::text || ':' || active::text FROM registrarmain") == "boolean:false");
      CHECK(pgdb->query("SELECT \"virtual\" IS NULL AND provider_keys IS NULL AND iak_cert IS NULL FROM registrarmain") == "t");
      CHECK(pgdb->query("SELECT pg_typeof(port)::text || ':' || port::text FROM registrarmain") == "integer:9002");
      CHECK(pgdb->query("SELECT pg_typeof(\"key\")::text FROM registrarmain") == "character varying");
      CHECK(store->set_active("agent-1", true));
      CHECK(pgdb->query("SELECT active::text FROM registrarmain") == "true");
      return;
    }
    CHECK(query_text(file, "SELECT typeof(active) || ':' || active FROM registrarmain") == "integer:0");
    CHECK(query_text(file, "SELECT typeof(\"virtual\") FROM registrarmain") == "null");
    CHECK(query_text(file, "SELECT typeof(provider_keys) FROM registrarmain") == "null");
    CHECK(query_text(file, "SELECT typeof(iak_cert) FROM registrarmain") == "null");
    CHECK(query_text(file, "SELECT typeof(port) || ':' || port FROM registrarmain") == "integer:9002");
    CHECK(query_text(file, "SELECT typeof(\"key\") FROM registrarmain") == "text");
    CHECK(store->set_active("agent-1", true));
    CHECK(query_text(file, "SELECT typeof(active) || ':' || active FROM registrarmain") == "integer:1");
  }
  SECTION("duplicate insert throws DuplicateAgent and leaves the row alone") {
    auto b = sample_agent("agent-1");
    b.ip = "10.0.0.1";
    CHECK_THROWS_AS(store->insert(b), DuplicateAgent);
    CHECK(store->find("agent-1")->ip == std::optional<std::string>("127.0.0.1"));
  }
  SECTION("update replaces every column, false for an unknown id") {
    auto b = a;
    b.ip = std::nullopt;
    b.port = std::nullopt;
    b.iak_tpm = "iak";
    b.idevid_tpm = "idevid";
    b.iak_cert = "iakcert";
    b.idevid_cert = "idevidcert";
    b.virtual_flag = true;
    b.provider_keys = "{}";
    b.active = true;
    b.regcount = 2;
    CHECK(store->update(b));
    CHECK(*store->find("agent-1") == b);
    b.agent_id = "ghost";
    CHECK_FALSE(store->update(b));
    CHECK_FALSE(store->find("ghost").has_value());
  }
  SECTION("set_active / remove / list") {
    store->insert(sample_agent("agent-0"));
    CHECK(store->list_ids() == std::vector<std::string>{"agent-0", "agent-1"});
    CHECK(store->set_active("agent-1", true));
    CHECK(store->find("agent-1")->active);
    CHECK(store->set_active("agent-1", false));
    CHECK_FALSE(store->find("agent-1")->active);
    CHECK_FALSE(store->set_active("ghost", true));
    CHECK(store->remove("agent-0"));
    CHECK_FALSE(store->remove("agent-0"));
    CHECK(store->list_ids() == std::vector<std::string>{"agent-1"});
  }
  SECTION("remove_if_inactive deletes only an inactive agent") {
    CHECK(store->remove_if_inactive("agent-1"));
    CHECK_FALSE(store->find("agent-1").has_value());
    CHECK_FALSE(store->remove_if_inactive("agent-1"));
    auto b = sample_agent("agent-2");
    b.active = true;
    store->insert(b);
    CHECK_FALSE(store->remove_if_inactive("agent-2"));
    CHECK(store->find("agent-2").has_value());
  }
  SECTION("binary-safe text: values are stored byte-exact") {
    auto b = sample_agent(std::string("weird-\xc3\xa9-id"));
    b.provider_keys = std::string("a\0b", 3);
    if (backend == "postgresql") {
      // PostgreSQL text cannot hold NUL: refused rather than silently truncated.
      CHECK_THROWS_AS(store->insert(b), StorageError);
      CHECK_FALSE(store->find(b.agent_id).has_value());
      b.provider_keys = "{\"k\": \"\xe2\x82\xac\"}";
    }
    store->insert(b);
    CHECK(store->find(b.agent_id)->provider_keys == b.provider_keys);
    CHECK(store->find(b.agent_id)->agent_id == b.agent_id);
  }
}

TEST_CASE("data survives closing and reopening (durability)", "[storage]") {
  TestDb db(GENERATE(from_range(storage_backends())), "reg.sqlite");
  INFO("backend " << db.backend());
  {
    auto store = open_registrar_store(db.url(), "/nonexistent");
    auto a = sample_agent("persisted");
    a.active = true;
    store->insert(a);
    store->insert(sample_agent("deleted"));
    CHECK(store->remove("deleted"));
  }
  auto store = open_registrar_store(db.url(), "/nonexistent");
  auto got = store->find("persisted");
  REQUIRE(got.has_value());
  CHECK(got->active);
  CHECK(got->ek_tpm == sample_agent("x").ek_tpm);
  CHECK(store->list_ids() == std::vector<std::string>{"persisted"});
  CHECK(db.query("SELECT count(*) FROM alembic_version_registrar") == "1");
}

TEST_CASE("upstream's reg_data.sqlite is read and written in place", "[storage]") {
  kl::testing::TempDir t;
  const fs::path file = copy_sample(t.path(), "reg_data.sqlite");
  const std::string schema_before = query_text(file, "SELECT group_concat(sql, ';') FROM sqlite_master");
  {
    auto store = open_registrar_store("sqlite", t.path());
    CHECK(store->list_ids() == std::vector<std::string>{kSampleId});
    auto a = store->find(kSampleId);
    REQUIRE(a.has_value());
    CHECK(a->active);
    CHECK(a->regcount == 1);
    CHECK(a->ip == std::optional<std::string>("127.0.0.1"));
    CHECK(a->port == std::optional<int>(19002));
    CHECK_FALSE(a->virtual_flag.has_value());
    CHECK_FALSE(a->provider_keys.has_value());
    CHECK_FALSE(a->iak_tpm.has_value());
    CHECK_FALSE(a->idevid_cert.has_value());
    REQUIRE(a->key.has_value());
    CHECK(a->key->size() == 44);
    // Exact stored values, compared against an independent reader.
    CHECK(*a->key == query_text(file, "SELECT \"key\" FROM registrarmain"));
    CHECK(*a->ekcert == query_text(file, "SELECT ekcert FROM registrarmain"));
    CHECK(*a->ek_tpm == query_text(file, "SELECT ek_tpm FROM registrarmain"));
    CHECK(*a->aik_tpm == query_text(file, "SELECT aik_tpm FROM registrarmain"));
    CHECK(*a->mtls_cert == query_text(file, "SELECT mtls_cert FROM registrarmain"));
    CHECK(a->mtls_cert->rfind("MII", 0) == 0);

    // A row written by us next to upstream's has the same storage classes.
    auto b = sample_agent("ours");
    b.active = true;
    store->insert(b);
    CHECK(store->update(*a));  // re-writing upstream's row unchanged keeps it identical
    CHECK(*store->find(kSampleId) == *a);
  }
  CHECK(query_text(file, "SELECT group_concat(sql, ';') FROM sqlite_master") == schema_before);
  CHECK(query_text(file, "SELECT version_num FROM alembic_version_registrar") == "a59cc9366774");
  for (const char* col : {"active", "\"virtual\"", "provider_keys", "regcount", "port", "\"key\"", "iak_tpm"}) {
    INFO(col);
    CHECK(query_text(file, std::string("SELECT group_concat(DISTINCT typeof(") + col + ")) FROM registrarmain") ==
          query_text(file, std::string("SELECT typeof(") + col + ") FROM registrarmain WHERE agent_id = '" +
                               kSampleId + "'"));
  }
}

TEST_CASE("a fresh database has exactly upstream's schema text", "[storage]") {
  kl::testing::TempDir t;
  const fs::path sample = copy_sample(t.path(), "reg_data.sqlite");
  open_registrar_store("sqlite:///" + (t.path() / "new.sqlite").string(), t.path());
  const std::string q = "SELECT group_concat(type || ' ' || name || ' ' || sql, ';') FROM "
                        "(SELECT * FROM sqlite_master ORDER BY name)";
  CHECK(query_text(t.path() / "new.sqlite", q) == query_text(sample, q));
}

TEST_CASE("a fresh PostgreSQL database has upstream's columns and types", "[storage]") {
  if (kl::testing::pg_skipped()) return;
  TestDb db("postgresql", "");
  open_registrar_store(db.url(), "/k");
  const std::string cols = db.query(
      "SELECT string_agg(column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') || "
      "CASE WHEN is_nullable = 'NO' THEN ' NOT NULL' ELSE '' END, ', ' ORDER BY ordinal_position) "
      "FROM information_schema.columns WHERE table_name = 'registrarmain'");
  CHECK(cols ==
        "agent_id character varying(80) NOT NULL, key character varying(45), ekcert text, virtual boolean, "
        "active boolean, provider_keys text, regcount integer, aik_tpm character varying(500), "
        "ek_tpm character varying(500), ip character varying(15), port integer, mtls_cert text, "
        "iak_tpm character varying(500), idevid_tpm character varying(500), iak_cert character varying(2048), "
        "idevid_cert character varying(2048)");
  CHECK(db.query("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                 "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'registrarmain'::regclass AND i.indisprimary") ==
        "agent_id");
  CHECK(db.query("SELECT conname FROM pg_constraint WHERE conrelid = 'alembic_version_registrar'::regclass") ==
        "alembic_version_registrar_pkc");
  // Opening again (a second process, a restart) leaves the schema and the stamp alone.
  open_registrar_store(db.url(), "/k");
  CHECK(db.query("SELECT count(*) FROM alembic_version_registrar") == "1");
}

TEST_CASE("an older schema lacking columns is refused, not altered", "[storage]") {
  TestDb db(GENERATE(from_range(storage_backends())), "old.sqlite");
  INFO("backend " << db.backend());
  db.query("CREATE TABLE registrarmain (agent_id VARCHAR(80) PRIMARY KEY, \"key\" VARCHAR(45))");
  CHECK_THROWS_WITH(open_registrar_store(db.url(), "/k"), Catch::Contains("iak_tpm"));
  CHECK(db.query(db.is_pg() ? "SELECT count(*) FROM information_schema.columns WHERE table_name = 'registrarmain'"
                            : "SELECT count(*) FROM pragma_table_info('registrarmain')") == "2");
}

TEST_CASE("not a database: StorageError, no crash", "[storage]") {
  kl::testing::TempDir t;
  std::ofstream(t.path() / "reg_data.sqlite") << std::string(5000, 'G');
  CHECK_THROWS_AS(open_registrar_store("sqlite", t.path()), StorageError);
}

TEST_CASE("PostgreSQL unreachable or wrong password: StorageError without the password", "[storage]") {
  if (kl::testing::pg_skipped()) return;
  auto& server = kl::testing::shared_pg_server();
  const std::string closed = "postgresql://keylime:pw@127.0.0.1:" + std::to_string(kl::testing::free_tcp_port()) + "/x";
  CHECK_THROWS_AS(open_registrar_store(closed, "/k"), StorageError);
  const std::string wrong = "postgresql://keylime:Wr0ngSecret@127.0.0.1:" + std::to_string(server.port()) + "/postgres";
  try {
    open_registrar_store(wrong, "/k");
    FAIL("a wrong password was accepted");
  } catch (const StorageError& e) {
    CHECK_THAT(e.what(), Catch::Contains("password authentication failed"));
    CHECK_THAT(e.what(), !Catch::Contains("Wr0ngSecret"));
  }
  CHECK_THROWS_AS(open_registrar_store(server.url("no_such_db"), "/k"), StorageError);
}

TEST_CASE("PostgreSQL restart: the pool reconnects, no call fails afterwards", "[storage]") {
  if (kl::testing::pg_skipped()) return;
  // A server of its own: restarting the shared one would disturb other test cases of this process.
  kl::testing::PgServer server;
  const std::string url = server.create_database();
  auto store = open_registrar_store(url, "/k", StoreOptions{3});
  store->insert(sample_agent("before"));
  server.restart();
  for (int i = 0; i < 6; ++i) CHECK(store->find("before").has_value());  // every pooled connection was dropped
  store->insert(sample_agent("after"));
  CHECK(store->list_ids() == std::vector<std::string>{"after", "before"});
  CHECK(store->stats().connections_open >= 1);  // replaced as needed, never more than the pool
  CHECK(store->stats().connections_open <= 3);
  CHECK(store->stats().errors == 0);
}

TEST_CASE("concurrent writers from several threads", "[storage]") {
  TestDb db(GENERATE(from_range(storage_backends())), "reg.sqlite");
  INFO("backend " << db.backend());
  // Fewer connections than threads: callers wait for a pooled connection rather than opening their own.
  auto store = open_registrar_store(db.url(), db.dir(), StoreOptions{2});
  constexpr int kThreads = 6, kPer = 100;
  std::vector<std::thread> th;
  std::atomic<int> dup{0};
  for (int i = 0; i < kThreads; ++i)
    th.emplace_back([&, i] {
      for (int j = 0; j < kPer; ++j) {
        store->insert(sample_agent("t" + std::to_string(i) + "-" + std::to_string(j)));
        try {
          store->insert(sample_agent("shared-" + std::to_string(j)));
        } catch (const DuplicateAgent&) {
          ++dup;
        }
      }
    });
  for (auto& x : th) x.join();
  CHECK(store->list_ids().size() == kThreads * kPer + kPer);
  CHECK(dup.load() == (kThreads - 1) * kPer);
  if (db.is_pg()) {
    CHECK(store->stats().connections_open == 2);
    CHECK(store->stats().connections_in_use == 0);
    // The server saw at most the pool's connections from us (plus this query's own).
    CHECK(std::stoi(db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")) <= 3);
  }
  CHECK(store->stats().latency.count() >= static_cast<std::uint64_t>(2 * kThreads * kPer));
}

TEST_CASE("throughput of small committed writes", "[storage][perf]") {
  TestDb db(GENERATE(from_range(storage_backends())), "reg.sqlite");
  INFO("backend " << db.backend());
  auto store = open_registrar_store(db.url(), db.dir());
  constexpr int kN = 4000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {
    store->insert(sample_agent("perf-" + std::to_string(i)));
    store->set_active("perf-" + std::to_string(i), true);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = 2 * kN / secs;
  WARN(db.backend() << " committed writes/s: " << static_cast<long>(rate));
  // The target is >= 4000/s; the floor here is lower so a loaded shared CI machine does not flake.
  CHECK(rate > 1000);
}
