// SQLite backend of VerifierStore over upstream's `verifiermain`, `allowlists` and `mbpolicies` tables.
#include <mutex>
#include <variant>

#include "common/service/storage/backends.hpp"
#include "common/service/storage/sqlite_db.hpp"
#include "common/service/storage/verifier_columns.hpp"
#include "common/service/storage/verifier_store.hpp"

namespace kl::storage {
namespace {

constexpr const char* kAlembicRevision = "a59cc9366774";

// Upstream's cv_data.sqlite schema at alembic head a59cc9366774, statement for statement as stored in its
// sqlite_master (push-mode tables included, so upstream's alembic finds the database current).
struct SchemaObject {
  const char* name;
  const char* sql;
};
const SchemaObject kSchema[] = {
    {"alembic_version_cloud_verifier",
        "CREATE TABLE alembic_version_cloud_verifier (\n"
        "\tversion_num VARCHAR(32) NOT NULL, \n"
        "\tCONSTRAINT alembic_version_cloud_verifier_pkc PRIMARY KEY (version_num)\n"
        ")"},
    {"allowlists",
        "CREATE TABLE \"allowlists\" (\n"
        "\tid INTEGER NOT NULL, \n"
        "\tname VARCHAR(255) NOT NULL, \n"
        "\ttpm_policy TEXT, \n"
        "\tima_policy TEXT, checksum VARCHAR(128), generator INTEGER, \n"
        "\tPRIMARY KEY (id), \n"
        "\tCONSTRAINT uniq_allowlists0name UNIQUE (name)\n"
        ")"},
    {"ix_allowlists_checksum",
        "CREATE INDEX ix_allowlists_checksum ON allowlists (checksum)"},
    {"mbpolicies",
        "CREATE TABLE mbpolicies (\n"
        "\tid INTEGER NOT NULL, \n"
        "\tname VARCHAR(255) NOT NULL, \n"
        "\tmb_policy TEXT, \n"
        "\tPRIMARY KEY (id), \n"
        "\tCONSTRAINT uniq_mbpolicies_name UNIQUE (name)\n"
        ")"},
    {"verifiermain",
        "CREATE TABLE \"verifiermain\" (\n"
        "\tagent_id VARCHAR(80) NOT NULL, \n"
        "\tv VARCHAR(45), \n"
        "\tip VARCHAR(255), \n"
        "\tport INTEGER, \n"
        "\toperational_state INTEGER, \n"
        "\tpublic_key VARCHAR(500), \n"
        "\ttpm_policy TEXT, \n"
        "\tmeta_data TEXT, \n"
        "\trevocation_key VARCHAR(2800), \n"
        "\ttpm_version INTEGER, \n"
        "\taccept_tpm_hash_algs TEXT, \n"
        "\taccept_tpm_encryption_algs TEXT, \n"
        "\taccept_tpm_signing_algs TEXT, \n"
        "\thash_alg VARCHAR(10), \n"
        "\tenc_alg VARCHAR(10), \n"
        "\tsign_alg VARCHAR(10), \n"
        "\tima_sign_verification_keys VARCHAR(1000), \n"
        "\tverifier_id VARCHAR(100), \n"
        "\tverifier_ip VARCHAR(255), \n"
        "\tverifier_port INTEGER, \n"
        "\tboottime INTEGER, \n"
        "\tima_pcrs TEXT, \n"
        "\tpcr10 BLOB, \n"
        "\tnext_ima_ml_entry INTEGER, \n"
        "\tseverity_level INTEGER, \n"
        "\tlast_event_id VARCHAR(100), \n"
        "\tlearned_ima_keyrings TEXT, \n"
        "\tsupported_version VARCHAR(50), \n"
        "\tak_tpm VARCHAR(500), \n"
        "\tmtls_cert VARCHAR(2084), \n"
        "\tattestation_count INTEGER, \n"
        "\tima_policy_id INTEGER, \n"
        "\ttpm_clockinfo TEXT, \n"
        "\tlast_received_quote INTEGER, \n"
        "\tlast_successful_attestation INTEGER, \n"
        "\tmb_policy_id INTEGER, \n"
        "\taccept_attestations BOOLEAN DEFAULT (1) NOT NULL, consecutive_attestation_failures INTEGER, \n"
        "\tPRIMARY KEY (agent_id), \n"
        "\tCONSTRAINT fk_verifiermain_mbpolicies FOREIGN KEY(mb_policy_id) REFERENCES mbpolicies (id), \n"
        "\tCONSTRAINT fk_verifiermain_allowlists FOREIGN KEY(ima_policy_id) REFERENCES allowlists (id)\n"
        ")"},
    {"attestations",
        "CREATE TABLE attestations (\n"
        "\tagent_id VARCHAR(80) NOT NULL, \n"
        "\t\"index\" INTEGER NOT NULL, \n"
        "\tstage VARCHAR(25) DEFAULT 'awaiting_evidence' NOT NULL, \n"
        "\tevaluation VARCHAR(10) DEFAULT 'pending' NOT NULL, \n"
        "\tfailure_reason VARCHAR(25), \n"
        "\tsystem_info__boot_time VARCHAR(32) NOT NULL, \n"
        "\tcapabilities_received_at VARCHAR(32) NOT NULL, \n"
        "\tchallenges_expire_at VARCHAR(32), \n"
        "\tevidence_received_at VARCHAR(32), \n"
        "\tverification_completed_at VARCHAR(32), \n"
        "\tPRIMARY KEY (agent_id, \"index\"), \n"
        "\tFOREIGN KEY(agent_id) REFERENCES verifiermain (agent_id)\n"
        ")"},
    {"sessions",
        "CREATE TABLE sessions (\n"
        "\tsession_id VARCHAR(36) NOT NULL, \n"
        "\ttoken_hash VARCHAR(64) NOT NULL, \n"
        "\ttoken_salt VARCHAR(32) NOT NULL, \n"
        "\tagent_id VARCHAR(80), \n"
        "\tactive BOOLEAN, \n"
        "\tnonce BLOB, \n"
        "\thash_algorithm VARCHAR(15), \n"
        "\tsigning_scheme VARCHAR(15), \n"
        "\tak_attest BLOB, \n"
        "\tak_sign BLOB, \n"
        "\tnonce_created_at VARCHAR(32), \n"
        "\tnonce_expires_at VARCHAR(32), \n"
        "\tpop_received_at VARCHAR(32), \n"
        "\ttoken_expires_at VARCHAR(32), \n"
        "\tPRIMARY KEY (session_id)\n"
        ")"},
    {"ix_sessions_agent_id",
        "CREATE INDEX ix_sessions_agent_id ON sessions (agent_id)"},
    {"evidence_items",
        "CREATE TABLE \"evidence_items\" (\n"
        "\tid INTEGER NOT NULL, \n"
        "\tagent_id VARCHAR(80) NOT NULL, \n"
        "\tattestation_index INTEGER NOT NULL, \n"
        "\tevidence_class VARCHAR(20) NOT NULL, \n"
        "\tevidence_type VARCHAR(30) NOT NULL, \n"
        "\tcapabilities__component_version VARCHAR(20), \n"
        "\tcapabilities__evidence_version VARCHAR(20), \n"
        "\tcapabilities__signature_schemes TEXT, \n"
        "\tcapabilities__hash_algorithms TEXT, \n"
        "\tcapabilities__available_subjects TEXT, \n"
        "\tcapabilities__certification_keys TEXT, \n"
        "\tcapabilities__entry_count INTEGER, \n"
        "\tcapabilities__supports_partial_access BOOLEAN, \n"
        "\tcapabilities__appendable BOOLEAN, \n"
        "\tcapabilities__formats TEXT, \n"
        "\tcapabilities__meta TEXT, \n"
        "\tchosen_parameters__challenge BLOB, \n"
        "\tchosen_parameters__signature_scheme VARCHAR(20), \n"
        "\tchosen_parameters__hash_algorithm VARCHAR(20), \n"
        "\tchosen_parameters__selected_subjects TEXT, \n"
        "\tchosen_parameters__certification_key TEXT, \n"
        "\tchosen_parameters__starting_offset INTEGER, \n"
        "\tchosen_parameters__entry_count INTEGER, \n"
        "\tchosen_parameters__format VARCHAR(255), \n"
        "\tchosen_parameters__meta TEXT, \n"
        "\tdata__subject_data TEXT, \n"
        "\tdata__message BLOB, \n"
        "\tdata__signature BLOB, \n"
        "\tdata__entry_count INTEGER, \n"
        "\tdata__entries TEXT, \n"
        "\tdata__meta TEXT, \n"
        "\tresults__certified_entry_count INTEGER, \n"
        "\tresults__meta TEXT, \n"
        "\tPRIMARY KEY (id), \n"
        "\tFOREIGN KEY(agent_id, attestation_index) REFERENCES attestations (agent_id, \"index\")\n"
        ")"},
};

using namespace verifier_columns;

void bind_column(Statement& s, int idx, const VerifierAgent& a, const Field& f) {
  std::visit(overloaded{
                 [&](std::string VerifierAgent::*m) { s.bind_text(idx, a.*m); },
                 [&](std::optional<std::string> VerifierAgent::*m) { s.bind_text(idx, a.*m); },
                 [&](std::optional<int> VerifierAgent::*m) {
                   s.bind_int(idx, (a.*m) ? std::optional<long long>(*(a.*m)) : std::nullopt);
                 },
                 [&](std::optional<long long> VerifierAgent::*m) { s.bind_int(idx, a.*m); },
                 [&](std::optional<Bytes> VerifierAgent::*m) {
                   s.bind_blob(idx, (a.*m) ? std::optional<std::string>(as_string(*(a.*m))) : std::nullopt);
                 },
                 [&](bool VerifierAgent::*m) { s.bind_int(idx, (a.*m) ? 1 : 0); },
             },
             f);
}

void read_column(const Statement& s, int col, VerifierAgent& a, const Field& f) {
  std::visit(overloaded{
                 [&](std::string VerifierAgent::*m) { a.*m = s.column_text(col).value_or(""); },
                 [&](std::optional<std::string> VerifierAgent::*m) { a.*m = s.column_text(col); },
                 [&](std::optional<int> VerifierAgent::*m) {
                   const auto v = s.column_int(col);
                   a.*m = v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
                 },
                 [&](std::optional<long long> VerifierAgent::*m) { a.*m = s.column_int(col); },
                 [&](std::optional<Bytes> VerifierAgent::*m) {
                   const auto v = s.column_blob(col);
                   a.*m = v ? std::optional<Bytes>(Bytes(v->begin(), v->end())) : std::nullopt;
                 },
                 // NOT NULL DEFAULT 1 in the schema; a NULL could only come from a hand-edited row.
                 [&](bool VerifierAgent::*m) { a.*m = s.column_int(col).value_or(1) != 0; },
             },
             f);
}

const std::string& select_agents_sql() {
  static const std::string sql = select_agents_statement();
  return sql;
}
const std::string& insert_agent_sql() {
  static const std::string sql = insert_agent_statement('?');
  return sql;
}
const std::string& update_agent_sql() {
  static const std::string sql = update_agent_statement('?');
  return sql;
}

VerifierAgent read_agent(const Statement& s) {
  VerifierAgent a;
  for (int i = 0; i < kNumAgentColumns; ++i) read_column(s, i, a, kAgentColumns[i].field);
  return a;
}
void bind_agent(Statement& s, const VerifierAgent& a) {
  for (int i = 0; i < kNumAgentColumns; ++i) bind_column(s, i + 1, a, kAgentColumns[i].field);
}

RuntimePolicy read_runtime_policy(const Statement& s) {
  RuntimePolicy p;
  p.id = s.column_int(0).value_or(0);
  p.name = s.column_text(1).value_or("");
  p.tpm_policy = s.column_text(2);
  p.ima_policy = s.column_text(3);
  p.checksum = s.column_text(4);
  if (auto g = s.column_int(5)) p.generator = static_cast<int>(*g);
  return p;
}
MbPolicy read_mb_policy(const Statement& s) {
  MbPolicy p;
  p.id = s.column_int(0).value_or(0);
  p.name = s.column_text(1).value_or("");
  p.mb_policy = s.column_text(2);
  return p;
}

class SqliteVerifierStore final : public VerifierStore {
 public:
  explicit SqliteVerifierStore(const std::filesystem::path& file) : db_(file) { ensure_schema(); }

  std::optional<VerifierAgent> find_agent(const std::string& agent_id) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(select_agents_sql() + " WHERE agent_id = ?1");
    s->bind_text(1, agent_id);
    if (!s->step()) return std::nullopt;
    return read_agent(*s);
  }

  std::vector<VerifierAgent> load_agents(const std::optional<std::string>& verifier_id) override {
    std::lock_guard lk(db_.mutex());
    std::vector<VerifierAgent> out;
    auto s = db_.prepare(select_agents_sql() + " WHERE ?1 IS NULL OR verifier_id = ?1 ORDER BY agent_id");
    s->bind_text(1, verifier_id);
    while (s->step()) out.push_back(read_agent(*s));
    return out;
  }

  std::vector<std::string> list_agent_ids(const std::optional<std::string>& verifier_id) override {
    std::lock_guard lk(db_.mutex());
    std::vector<std::string> out;
    auto s = db_.prepare("SELECT agent_id FROM verifiermain WHERE ?1 IS NULL OR verifier_id = ?1 ORDER BY agent_id");
    s->bind_text(1, verifier_id);
    while (s->step())
      if (auto id = s->column_text(0)) out.push_back(*id);
    return out;
  }

  VerifierAgent add_agent(VerifierAgent agent, const std::optional<RuntimePolicy>& rp,
                          const std::optional<MbPolicy>& mb) override {
    std::lock_guard lk(db_.mutex());
    Transaction tx(db_);
    if (rp) agent.ima_policy_id = insert_runtime_policy_locked(*rp);
    if (mb) agent.mb_policy_id = insert_mb_policy_locked(*mb);
    auto s = db_.prepare(insert_agent_sql());
    bind_agent(*s, agent);
    try {
      s->step();
    } catch (const DuplicateKey&) {
      throw DuplicateAgent("agent " + agent.agent_id + " already exists");
    } catch (const ForeignKeyViolation&) {
      throw StorageError("agent " + agent.agent_id + " refers to a runtime or measured-boot policy that does not exist");
    }
    tx.commit();
    return agent;
  }

  bool update_agent(const VerifierAgent& agent) override {
    std::lock_guard lk(db_.mutex());
    return update_agent_locked(agent);
  }

  size_t update_agents(const std::vector<VerifierAgent>& agents) override {
    std::lock_guard lk(db_.mutex());
    Transaction tx(db_);
    size_t n = 0;
    for (const auto& a : agents) n += update_agent_locked(a) ? 1 : 0;
    tx.commit();
    return n;
  }

  bool remove_agent(const std::string& agent_id) override {
    std::lock_guard lk(db_.mutex());
    Transaction tx(db_);
    if (has_push_tables_) {
      run("DELETE FROM evidence_items WHERE agent_id = ?1", agent_id);
      run("DELETE FROM attestations WHERE agent_id = ?1", agent_id);
    }
    const bool existed = run("DELETE FROM verifiermain WHERE agent_id = ?1", agent_id) > 0;
    // Policies named after the agent were created for it by add; another agent may have been pointed at
    // one since, in which case it stays.
    run("DELETE FROM allowlists WHERE name = ?1 AND id NOT IN "
        "(SELECT ima_policy_id FROM verifiermain WHERE ima_policy_id IS NOT NULL)",
        agent_id);
    run("DELETE FROM mbpolicies WHERE name = ?1 AND id NOT IN "
        "(SELECT mb_policy_id FROM verifiermain WHERE mb_policy_id IS NOT NULL)",
        agent_id);
    tx.commit();
    return existed;
  }

  std::vector<std::pair<int, std::size_t>> count_by_state(const std::optional<std::string>& verifier_id) override {
    std::lock_guard lk(db_.mutex());
    std::vector<std::pair<int, std::size_t>> out;
    auto s = db_.prepare("SELECT ifnull(operational_state, -1), count(*) FROM verifiermain "
                         "WHERE ?1 IS NULL OR verifier_id = ?1 GROUP BY 1 ORDER BY 1");
    s->bind_text(1, verifier_id);
    while (s->step())
      out.emplace_back(static_cast<int>(s->column_int(0).value_or(-1)), static_cast<std::size_t>(s->column_int(1).value_or(0)));
    return out;
  }

  std::optional<RuntimePolicy> find_runtime_policy(const std::string& name) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(
        "SELECT id, name, tpm_policy, ima_policy, checksum, generator FROM allowlists WHERE name = ?1");
    s->bind_text(1, name);
    if (!s->step()) return std::nullopt;
    return read_runtime_policy(*s);
  }

  std::optional<RuntimePolicy> find_runtime_policy_by_id(long long id) override {
    std::lock_guard lk(db_.mutex());
    auto s =
        db_.prepare("SELECT id, name, tpm_policy, ima_policy, checksum, generator FROM allowlists WHERE id = ?1");
    s->bind_int(1, id);
    if (!s->step()) return std::nullopt;
    return read_runtime_policy(*s);
  }

  std::vector<std::string> list_runtime_policy_names() override { return names("SELECT name FROM allowlists ORDER BY name"); }

  long long insert_runtime_policy(const RuntimePolicy& p) override {
    std::lock_guard lk(db_.mutex());
    return insert_runtime_policy_locked(p);
  }

  bool update_runtime_policy(const RuntimePolicy& p) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare(
        "UPDATE allowlists SET tpm_policy = ?2, ima_policy = ?3, checksum = ?4, generator = ?5 WHERE name = ?1");
    s->bind_text(1, p.name);
    s->bind_text(2, p.tpm_policy);
    s->bind_text(3, p.ima_policy);
    s->bind_text(4, p.checksum);
    s->bind_int(5, p.generator ? std::optional<long long>(*p.generator) : std::nullopt);
    s->step();
    return db_.changes() > 0;
  }

  bool remove_runtime_policy(const std::string& name) override {
    std::lock_guard lk(db_.mutex());
    try {
      return run("DELETE FROM allowlists WHERE name = ?1", name) > 0;
    } catch (const ForeignKeyViolation&) {
      throw PolicyInUse("runtime policy " + name + " is used by an agent");
    }
  }

  std::optional<MbPolicy> find_mb_policy(const std::string& name) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare("SELECT id, name, mb_policy FROM mbpolicies WHERE name = ?1");
    s->bind_text(1, name);
    if (!s->step()) return std::nullopt;
    return read_mb_policy(*s);
  }

  std::optional<MbPolicy> find_mb_policy_by_id(long long id) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare("SELECT id, name, mb_policy FROM mbpolicies WHERE id = ?1");
    s->bind_int(1, id);
    if (!s->step()) return std::nullopt;
    return read_mb_policy(*s);
  }

  std::vector<std::string> list_mb_policy_names() override { return names("SELECT name FROM mbpolicies ORDER BY name"); }

  long long insert_mb_policy(const MbPolicy& p) override {
    std::lock_guard lk(db_.mutex());
    return insert_mb_policy_locked(p);
  }

  bool update_mb_policy(const MbPolicy& p) override {
    std::lock_guard lk(db_.mutex());
    auto s = db_.prepare("UPDATE mbpolicies SET mb_policy = ?2 WHERE name = ?1");
    s->bind_text(1, p.name);
    s->bind_text(2, p.mb_policy);
    s->step();
    return db_.changes() > 0;
  }

  bool remove_mb_policy(const std::string& name) override {
    std::lock_guard lk(db_.mutex());
    try {
      return run("DELETE FROM mbpolicies WHERE name = ?1", name) > 0;
    } catch (const ForeignKeyViolation&) {
      throw PolicyInUse("measured-boot policy " + name + " is used by an agent");
    }
  }

 private:
  int run(const std::string& sql, const std::string& arg) {
    auto s = db_.prepare(sql);
    s->bind_text(1, arg);
    s->step();
    return db_.changes();
  }

  std::vector<std::string> names(const std::string& sql) {
    std::lock_guard lk(db_.mutex());
    std::vector<std::string> out;
    auto s = db_.prepare(sql);
    while (s->step())
      if (auto n = s->column_text(0)) out.push_back(*n);
    return out;
  }

  bool update_agent_locked(const VerifierAgent& a) {
    auto s = db_.prepare(update_agent_sql());
    bind_agent(*s, a);
    try {
      s->step();
    } catch (const ForeignKeyViolation&) {
      throw StorageError("agent " + a.agent_id + " refers to a runtime or measured-boot policy that does not exist");
    }
    return db_.changes() > 0;
  }

  long long insert_runtime_policy_locked(const RuntimePolicy& p) {
    auto s = db_.prepare(
        "INSERT INTO allowlists (name, tpm_policy, ima_policy, checksum, generator) VALUES (?1, ?2, ?3, ?4, ?5)");
    s->bind_text(1, p.name);
    s->bind_text(2, p.tpm_policy);
    s->bind_text(3, p.ima_policy);
    s->bind_text(4, p.checksum);
    s->bind_int(5, p.generator ? std::optional<long long>(*p.generator) : std::nullopt);
    try {
      s->step();
    } catch (const DuplicateKey&) {
      throw DuplicatePolicy("runtime policy " + p.name + " already exists");
    }
    return db_.last_insert_rowid();
  }

  long long insert_mb_policy_locked(const MbPolicy& p) {
    auto s = db_.prepare("INSERT INTO mbpolicies (name, mb_policy) VALUES (?1, ?2)");
    s->bind_text(1, p.name);
    s->bind_text(2, p.mb_policy);
    try {
      s->step();
    } catch (const DuplicateKey&) {
      throw DuplicatePolicy("measured-boot policy " + p.name + " already exists");
    }
    return db_.last_insert_rowid();
  }

  // Creates whichever of upstream's tables are absent (a fresh file gets all of them and the alembic
  // stamp); existing tables are used as they are after checking they have every column we use.
  void ensure_schema() {
    std::lock_guard lk(db_.mutex());
    check_alembic_revision(db_, "alembic_version_cloud_verifier", kAlembicRevision);
    const bool fresh = !db_.table_exists("verifiermain");
    if (!fresh) {
      std::string missing;
      const auto have = db_.columns("verifiermain");
      for (const auto& c : kAgentColumns)
        if (!have.count(c.name)) missing += std::string(missing.empty() ? "" : ", ") + c.name;
      for (const char* t : {"allowlists", "mbpolicies"})
        if (!db_.table_exists(t)) missing += std::string(missing.empty() ? "" : ", ") + "table " + t;
      if (!missing.empty())
        throw StorageError("verifier database " + db_.path().string() + " lacks " + missing +
                           "; migrate it to alembic revision " + kAlembicRevision + " with upstream Keylime first");
      has_push_tables_ = db_.table_exists("attestations") && db_.table_exists("evidence_items");
      return;
    }
    Transaction tx(db_);
    const bool stamp = !db_.table_exists("alembic_version_cloud_verifier");
    for (const auto& o : kSchema) {
      const std::string n = o.name;
      const bool is_index = n.rfind("ix_", 0) == 0;
      if (!is_index && db_.table_exists(n)) continue;
      if (is_index) {
        auto s = db_.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1");
        s->bind_text(1, n);
        if (s->step()) continue;
      }
      db_.exec(o.sql);
    }
    if (stamp) {
      auto s = db_.prepare("INSERT INTO alembic_version_cloud_verifier (version_num) VALUES (?1)");
      s->bind_text(1, std::string(kAlembicRevision));
      s->step();
    }
    tx.commit();
    has_push_tables_ = true;
  }

  SqliteDb db_;
  bool has_push_tables_ = false;
};

}  // namespace

std::unique_ptr<VerifierStore> make_sqlite_verifier_store(const std::filesystem::path& file) {
  check_alembic_revision_file(file, "alembic_version_cloud_verifier", kAlembicRevision);  // before the connection sets WAL mode
  return std::make_unique<SqliteVerifierStore>(file);
}

}  // namespace kl::storage
