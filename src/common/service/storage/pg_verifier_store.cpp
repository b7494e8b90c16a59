// PostgreSQL backend of VerifierStore over upstream's `verifiermain`, `allowlists` and `mbpolicies` tables.
#include "common/service/storage/backends.hpp"
#include "common/service/storage/pg_db.hpp"
#include "common/service/storage/pg_schema.hpp"
#include "common/service/storage/verifier_columns.hpp"

namespace kl::storage {
namespace {

using namespace verifier_columns;

void add_param(PgParams& p, const VerifierAgent& a, const Field& f) {
  std::visit(overloaded{
                 [&](std::string VerifierAgent::*m) { p.text(a.*m); },
                 [&](std::optional<std::string> VerifierAgent::*m) { p.text(a.*m); },
                 [&](std::optional<int> VerifierAgent::*m) {
                   p.integer((a.*m) ? std::optional<long long>(*(a.*m)) : std::nullopt);
                 },
                 [&](std::optional<long long> VerifierAgent::*m) { p.integer(a.*m); },
                 [&](std::optional<Bytes> VerifierAgent::*m) {
                   p.bytes((a.*m) ? std::optional<std::string>(as_string(*(a.*m))) : std::nullopt);
                 },
                 [&](bool VerifierAgent::*m) { p.boolean(a.*m); },
             },
             f);
}

void read_field(const PgResult& r, int row, int col, VerifierAgent& a, const Field& f) {
  std::visit(overloaded{
                 [&](std::string VerifierAgent::*m) { a.*m = r.text(row, col).value_or(""); },
                 [&](std::optional<std::string> VerifierAgent::*m) { a.*m = r.text(row, col); },
                 [&](std::optional<int> VerifierAgent::*m) {
                   const auto v = r.integer(row, col);
                   a.*m = v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
                 },
                 [&](std::optional<long long> VerifierAgent::*m) { a.*m = r.integer(row, col); },
                 [&](std::optional<Bytes> VerifierAgent::*m) {
                   const auto v = r.bytes(row, col);
                   a.*m = v ? std::optional<Bytes>(Bytes(v->begin(), v->end())) : std::nullopt;
                 },
                 [&](bool VerifierAgent::*m) { a.*m = r.boolean(row, col).value_or(true); },
             },
             f);
}

PgParams agent_params(const VerifierAgent& a) {
  PgParams p;
  for (const auto& c : kAgentColumns) add_param(p, a, c.field);
  return p;
}

VerifierAgent read_agent(const PgResult& r, int row) {
  VerifierAgent a;
  for (int i = 0; i < kNumAgentColumns; ++i) read_field(r, row, i, a, kAgentColumns[i].field);
  return a;
}

const std::string& select_agents_sql() {
  static const std::string sql = select_agents_statement();
  return sql;
}
const std::string& insert_agent_sql() {
  static const std::string sql = insert_agent_statement('$');
  return sql;
}
const std::string& update_agent_sql() {
  static const std::string sql = update_agent_statement('$');
  return sql;
}

std::vector<std::string> column_names() {
  std::vector<std::string> out;
  for (const auto& c : kAgentColumns) out.emplace_back(c.name);
  return out;
}

RuntimePolicy read_runtime_policy(const PgResult& r) {
  RuntimePolicy p;
  p.id = r.integer(0, 0).value_or(0);
  p.name = r.text(0, 1).value_or("");
  p.tpm_policy = r.text(0, 2);
  p.ima_policy = r.text(0, 3);
  p.checksum = r.text(0, 4);
  if (auto g = r.integer(0, 5)) p.generator = static_cast<int>(*g);
  return p;
}
MbPolicy read_mb_policy(const PgResult& r) {
  MbPolicy p;
  p.id = r.integer(0, 0).value_or(0);
  p.name = r.text(0, 1).value_or("");
  p.mb_policy = r.text(0, 2);
  return p;
}

std::optional<long long> opt_int(const std::optional<int>& v) {
  return v ? std::optional<long long>(*v) : std::nullopt;
}

const char* const kFkMessage = " refers to a runtime or measured-boot policy that does not exist";

class PgVerifierStore final : public VerifierStore {
 public:
  PgVerifierStore(const std::string& conninfo, std::size_t pool_size) : pool_(conninfo, pool_size) {
    auto c = pool_.acquire();
    pg_schema::ensure(*c, pg_schema::verifier_tables(), "verifiermain", column_names(),
                      "alembic_version_cloud_verifier");
  }

  std::optional<VerifierAgent> find_agent(const std::string& agent_id) override {
    auto c = pool_.acquire();
    auto r = c->exec(select_agents_sql() + " WHERE agent_id = $1", PgParams().text(agent_id));
    if (r.rows() == 0) return std::nullopt;
    return read_agent(r, 0);
  }

  std::vector<VerifierAgent> load_agents(const std::optional<std::string>& verifier_id) override {
    auto c = pool_.acquire();
    auto r = c->exec(select_agents_sql() +
                         " WHERE $1::text IS NULL OR verifier_id = $1::text ORDER BY agent_id COLLATE \"C\"",
                     PgParams().text(verifier_id));
    std::vector<VerifierAgent> out;
    out.reserve(static_cast<size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_agent(r, i));
    return out;
  }

  std::vector<std::string> list_agent_ids(const std::optional<std::string>& verifier_id) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT agent_id FROM verifiermain WHERE $1::text IS NULL OR verifier_id = $1::text "
                     "ORDER BY agent_id COLLATE \"C\"",
                     PgParams().text(verifier_id));
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0).value_or(""));
    return out;
  }

  VerifierAgent add_agent(VerifierAgent agent, const std::optional<RuntimePolicy>& rp,
                          const std::optional<MbPolicy>& mb) override {
    auto c = pool_.acquire();
    PgTransaction tx(*c);
    if (rp) agent.ima_policy_id = insert_runtime_policy_on(*c, *rp);
    if (mb) agent.mb_policy_id = insert_mb_policy_on(*c, *mb);
    try {
      c->exec(insert_agent_sql(), agent_params(agent));
    } catch (const PgDuplicateKey&) {
      throw DuplicateAgent("agent " + agent.agent_id + " already exists");
    } catch (const PgForeignKeyViolation&) {
      throw StorageError("agent " + agent.agent_id + kFkMessage);
    }
    tx.commit();
    return agent;
  }

  bool update_agent(const VerifierAgent& a) override {
    auto c = pool_.acquire();
    try {
      return c->exec(update_agent_sql(), agent_params(a)).affected() > 0;
    } catch (const PgForeignKeyViolation&) {
      throw StorageError("agent " + a.agent_id + kFkMessage);
    }
  }

  // One transaction, statements pipelined: one round trip for the whole batch rather than one per agent.
  size_t update_agents(const std::vector<VerifierAgent>& agents) override {
    if (agents.empty()) return 0;
    std::vector<PgParams> batch;
    batch.reserve(agents.size());
    for (const auto& a : agents) batch.push_back(agent_params(a));
    auto c = pool_.acquire();
    PgTransaction tx(*c);
    std::vector<long long> counts;
    try {
      counts = c->exec_batch(update_agent_sql(), batch);
    } catch (const PgForeignKeyViolation&) {
      throw StorageError("an agent of the batch" + std::string(kFkMessage));
    }
    tx.commit();
    size_t n = 0;
    for (auto k : counts) n += k > 0 ? 1 : 0;
    return n;
  }

  bool remove_agent(const std::string& agent_id) override {
    auto c = pool_.acquire();
    PgTransaction tx(*c);
    const auto id = PgParams().text(agent_id);
    c->exec("DELETE FROM evidence_items WHERE agent_id = $1", id);
    c->exec("DELETE FROM attestations WHERE agent_id = $1", id);
    const bool existed = c->exec("DELETE FROM verifiermain WHERE agent_id = $1", id).affected() > 0;
    // Policies named after the agent were created for it by add; another agent may have been pointed at
    // one since, in which case it stays.
    c->exec("DELETE FROM allowlists WHERE name = $1 AND id NOT IN "
            "(SELECT ima_policy_id FROM verifiermain WHERE ima_policy_id IS NOT NULL)",
            id);
    c->exec("DELETE FROM mbpolicies WHERE name = $1 AND id NOT IN "
            "(SELECT mb_policy_id FROM verifiermain WHERE mb_policy_id IS NOT NULL)",
            id);
    tx.commit();
    return existed;
  }

  std::optional<RuntimePolicy> find_runtime_policy(const std::string& name) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT id, name, tpm_policy, ima_policy, checksum, generator FROM allowlists WHERE name = $1",
                     PgParams().text(name));
    if (r.rows() == 0) return std::nullopt;
    return read_runtime_policy(r);
  }

  std::optional<RuntimePolicy> find_runtime_policy_by_id(long long id) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT id, name, tpm_policy, ima_policy, checksum, generator FROM allowlists WHERE id = $1",
                     PgParams().integer(id));
    if (r.rows() == 0) return std::nullopt;
    return read_runtime_policy(r);
  }

  std::vector<std::string> list_runtime_policy_names() override {
    return names("SELECT name FROM allowlists ORDER BY name COLLATE \"C\"");
  }

  long long insert_runtime_policy(const RuntimePolicy& p) override {
    auto c = pool_.acquire();
    return insert_runtime_policy_on(*c, p);
  }

  bool update_runtime_policy(const RuntimePolicy& p) override {
    auto c = pool_.acquire();
    return c->exec("UPDATE allowlists SET tpm_policy = $2, ima_policy = $3, checksum = $4, generator = $5 "
                   "WHERE name = $1",
                   PgParams().text(p.name).text(p.tpm_policy).text(p.ima_policy).text(p.checksum).integer(
                       opt_int(p.generator)))
               .affected() > 0;
  }

  bool remove_runtime_policy(const std::string& name) override {
    auto c = pool_.acquire();
    try {
      return c->exec("DELETE FROM allowlists WHERE name = $1", PgParams().text(name)).affected() > 0;
    } catch (const PgForeignKeyViolation&) {
      throw PolicyInUse("runtime policy " + name + " is used by an agent");
    }
  }

  std::optional<MbPolicy> find_mb_policy(const std::string& name) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT id, name, mb_policy FROM mbpolicies WHERE name = $1", PgParams().text(name));
    if (r.rows() == 0) return std::nullopt;
    return read_mb_policy(r);
  }

  std::optional<MbPolicy> find_mb_policy_by_id(long long id) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT id, name, mb_policy FROM mbpolicies WHERE id = $1", PgParams().integer(id));
    if (r.rows() == 0) return std::nullopt;
    return read_mb_policy(r);
  }

  std::vector<std::string> list_mb_policy_names() override {
    return names("SELECT name FROM mbpolicies ORDER BY name COLLATE \"C\"");
  }

  long long insert_mb_policy(const MbPolicy& p) override {
    auto c = pool_.acquire();
    return insert_mb_policy_on(*c, p);
  }

  bool update_mb_policy(const MbPolicy& p) override {
    auto c = pool_.acquire();
    return c->exec("UPDATE mbpolicies SET mb_policy = $2 WHERE name = $1", PgParams().text(p.name).text(p.mb_policy))
               .affected() > 0;
  }

  bool remove_mb_policy(const std::string& name) override {
    auto c = pool_.acquire();
    try {
      return c->exec("DELETE FROM mbpolicies WHERE name = $1", PgParams().text(name)).affected() > 0;
    } catch (const PgForeignKeyViolation&) {
      throw PolicyInUse("measured-boot policy " + name + " is used by an agent");
    }
  }

  std::vector<std::pair<int, std::size_t>> count_by_state(const std::optional<std::string>& verifier_id) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT coalesce(operational_state, -1), count(*) FROM verifiermain "
                     "WHERE $1::text IS NULL OR verifier_id = $1::text GROUP BY 1 ORDER BY 1",
                     PgParams().text(verifier_id));
    std::vector<std::pair<int, std::size_t>> out;
    for (int i = 0; i < r.rows(); ++i)
      out.emplace_back(static_cast<int>(r.integer(i, 0).value_or(-1)), static_cast<std::size_t>(r.integer(i, 1).value_or(0)));
    return out;
  }

  StoreStats stats() const override {
    StoreStats s;
    pool_.fill(s);
    return s;
  }

 private:
  std::vector<std::string> names(const std::string& sql) {
    auto c = pool_.acquire();
    auto r = c->exec(sql);
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0).value_or(""));
    return out;
  }

  static long long insert_runtime_policy_on(PgConnection& c, const RuntimePolicy& p) {
    try {
      return c.exec("INSERT INTO allowlists (name, tpm_policy, ima_policy, checksum, generator) "
                    "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    PgParams().text(p.name).text(p.tpm_policy).text(p.ima_policy).text(p.checksum).integer(
                        opt_int(p.generator)))
          .integer(0, 0)
          .value_or(0);
    } catch (const PgDuplicateKey&) {
      throw DuplicatePolicy("runtime policy " + p.name + " already exists");
    }
  }

  static long long insert_mb_policy_on(PgConnection& c, const MbPolicy& p) {
    try {
      return c.exec("INSERT INTO mbpolicies (name, mb_policy) VALUES ($1, $2) RETURNING id",
                    PgParams().text(p.name).text(p.mb_policy))
          .integer(0, 0)
          .value_or(0);
    } catch (const PgDuplicateKey&) {
      throw DuplicatePolicy("measured-boot policy " + p.name + " already exists");
    }
  }

  mutable PgPool pool_;
};

}  // namespace

std::unique_ptr<VerifierStore> make_pg_verifier_store(const std::string& conninfo, std::size_t pool_size) {
  return std::make_unique<PgVerifierStore>(conninfo, pool_size);
}

}  // namespace kl::storage
