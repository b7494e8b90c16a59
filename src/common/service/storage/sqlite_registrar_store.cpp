// SQLite backend of RegistrarStore over upstream's `registrarmain` table.
#include <mutex>

#include "common/service/storage/backends.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "common/service/storage/sqlite_db.hpp"

namespace kl::storage {
namespace {

// Upstream's schema at alembic head a59cc9366774, byte for byte as `sqlite3 reg_data.sqlite .schema` prints
// it, so a database we create is indistinguishable from one upstream created and upstream's alembic
// sees it as up to date.
constexpr const char* kAlembicTable =
    "CREATE TABLE alembic_version_registrar (\n"
    "\tversion_num VARCHAR(32) NOT NULL, \n"
    "\tCONSTRAINT alembic_version_registrar_pkc PRIMARY KEY (version_num)\n"
    ")";
constexpr const char* kRegistrarTable =
    "CREATE TABLE IF NOT EXISTS \"registrarmain\" (\n"
    "\tagent_id VARCHAR(80) NOT NULL, \n"
    "\t\"key\" VARCHAR(45), \n"
    "\tekcert TEXT, \n"
    "\t\"virtual\" BOOLEAN, \n"
    "\tactive BOOLEAN, \n"
    "\tprovider_keys TEXT, \n"
    "\tregcount INTEGER, \n"
    "\taik_tpm VARCHAR(500), \n"
    "\tek_tpm VARCHAR(500), \n"
    "\tip VARCHAR(15), \n"
    "\tport INTEGER, \n"
    "\tmtls_cert TEXT, \n"
    "\tiak_tpm VARCHAR(500), \n"
    "\tidevid_tpm VARCHAR(500), \n"
    "\tiak_cert VARCHAR(2048), \n"
    "\tidevid_cert VARCHAR(2048), \n"
    "\tPRIMARY KEY (agent_id)\n"
    ")";
constexpr const char* kAlembicRevision = "a59cc9366774";

// Column order shared by SELECT and INSERT below.
constexpr const char* kColumns =
    "agent_id, \"key\", aik_tpm, ek_tpm, ekcert, iak_tpm, idevid_tpm, iak_cert, idevid_cert, mtls_cert, ip, port, "
    "active, \"virtual\", provider_keys, regcount";
const char* const kColumnNames[] = {"agent_id", "key",       "aik_tpm", "ek_tpm", "ekcert",   "iak_tpm",
                                    "idevid_tpm", "iak_cert", "idevid_cert", "mtls_cert", "ip",  "port",
                                    "active",   "virtual",   "provider_keys", "regcount"};

std::optional<long long> opt_int(const std::optional<int>& v) {
  return v ? std::optional<long long>(*v) : std::nullopt;
}
std::optional<long long> opt_bool(const std::optional<bool>& v) {
  return v ? std::optional<long long>(*v ? 1 : 0) : std::nullopt;
}

class SqliteRegistrarStore final : public RegistrarStore {
 public:
  explicit SqliteRegistrarStore(const std::filesystem::path& file) : db_(file) { ensure_schema(); }

  std::optional<RegistrarAgent> find(const std::string& agent_id) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(std::string("SELECT ") + kColumns + " FROM registrarmain WHERE agent_id = ?1");
    s->bind_text(1, agent_id);
    if (!s->step()) return std::nullopt;
    RegistrarAgent a;
    a.agent_id = s->column_text(0).value_or("");
    a.key = s->column_text(1);
    a.aik_tpm = s->column_text(2);
    a.ek_tpm = s->column_text(3);
    a.ekcert = s->column_text(4);
    a.iak_tpm = s->column_text(5);
    a.idevid_tpm = s->column_text(6);
    a.iak_cert = s->column_text(7);
    a.idevid_cert = s->column_text(8);
    a.mtls_cert = s->column_text(9);
    a.ip = s->column_text(10);
    if (auto p = s->column_int(11)) a.port = static_cast<int>(*p);
    a.active = s->column_int(12).value_or(0) != 0;
    if (auto v = s->column_int(13)) a.virtual_flag = *v != 0;
    a.provider_keys = s->column_text(14);
    a.regcount = static_cast<int>(s->column_int(15).value_or(0));
    return a;
  }

  std::vector<std::string> list_ids() override {
    std::lock_guard lk(db_.mutex());
    std::vector<std::string> out;
    auto s = db_.prepare("SELECT agent_id FROM registrarmain ORDER BY agent_id");
    while (s->step())
      if (auto id = s->column_text(0)) out.push_back(*id);
    return out;
  }

  void insert(const RegistrarAgent& a) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(std::string("INSERT INTO registrarmain (") + kColumns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
    bind_all(*s, a);
    try {
      s->step();
    } catch (const DuplicateKey&) {
      throw DuplicateAgent("agent " + a.agent_id + " is already registered");
    }
  }

  bool update(const RegistrarAgent& a) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(
        "UPDATE registrarmain SET \"key\" = ?2, aik_tpm = ?3, ek_tpm = ?4, ekcert = ?5, iak_tpm = ?6, "
        "idevid_tpm = ?7, iak_cert = ?8, idevid_cert = ?9, mtls_cert = ?10, ip = ?11, port = ?12, active = ?13, "
        "\"virtual\" = ?14, provider_keys = ?15, regcount = ?16 WHERE agent_id = ?1");
    bind_all(*s, a);
    s->step();
    return db_.changes() > 0;
  }

  bool remove(const std::string& agent_id) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare("DELETE FROM registrarmain WHERE agent_id = ?1");
    s->bind_text(1, agent_id);
    s->step();
    return db_.changes() > 0;
  }

  bool set_active(const std::string& agent_id, bool active) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare("UPDATE registrarmain SET active = ?2 WHERE agent_id = ?1");
    s->bind_text(1, agent_id);
    s->bind_int(2, active ? 1 : 0);
    s->step();
    return db_.changes() > 0;
  }

  bool remove_if_inactive(const std::string& agent_id) override {
    std::lock_guard lk(db_.mutex());
    // One statement, so a concurrent activation cannot slip in between the check and the delete.
    auto s = db_.prepare("DELETE FROM registrarmain WHERE agent_id = ?1 AND (active IS NULL OR active = 0)");
    s->bind_text(1, agent_id);
    s->step();
    return db_.changes() > 0;
  }

 private:
  static void bind_all(Statement& s, const RegistrarAgent& a) {
    s.bind_text(1, a.agent_id);
    s.bind_text(2, a.key);
    s.bind_text(3, a.aik_tpm);
    s.bind_text(4, a.ek_tpm);
    s.bind_text(5, a.ekcert);
    s.bind_text(6, a.iak_tpm);
    s.bind_text(7, a.idevid_tpm);
    s.bind_text(8, a.iak_cert);
    s.bind_text(9, a.idevid_cert);
    s.bind_text(10, a.mtls_cert);
    s.bind_text(11, a.ip);
    s.bind_int(12, opt_int(a.port));
    s.bind_int(13, a.active ? 1 : 0);
    s.bind_int(14, opt_bool(a.virtual_flag));
    s.bind_text(15, a.provider_keys);
    s.bind_int(16, a.regcount);
  }

  // Creates upstream's tables in a fresh database; an existing one is used as it is, after checking it
  // has every column we read and write (an older upstream revision must be migrated by upstream first).
  void ensure_schema() {
    std::lock_guard lk(db_.mutex());
    check_alembic_revision(db_, "alembic_version_registrar", kAlembicRevision);
    if (db_.table_exists("registrarmain")) {
      const auto have = db_.columns("registrarmain");
      std::string missing;
      for (const char* c : kColumnNames)
        if (!have.count(c)) missing += std::string(missing.empty() ? "" : ", ") + c;
      if (!missing.empty())
        throw StorageError("registrarmain in " + db_.path().string() + " lacks column(s) " + missing +
                           "; migrate it to alembic revision " + kAlembicRevision + " with upstream Keylime first");
      return;
    }
    Transaction tx(db_);
    if (!db_.table_exists("alembic_version_registrar")) {
      db_.exec(kAlembicTable);
      auto s = db_.prepare("INSERT INTO alembic_version_registrar (version_num) VALUES (?1)");
      s->bind_text(1, std::string(kAlembicRevision));
      s->step();
    }
    db_.exec(kRegistrarTable);
    tx.commit();
  }

  SqliteDb db_;
};

}  // namespace

std::unique_ptr<RegistrarStore> make_sqlite_registrar_store(const std::filesystem::path& file) {
  check_alembic_revision_file(file, "alembic_version_registrar", kAlembicRevision);  // before the connection sets WAL mode
  return std::make_unique<SqliteRegistrarStore>(file);
}

}  // namespace kl::storage
