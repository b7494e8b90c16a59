// PostgreSQL LeaseStore: INSERT ... ON CONFLICT DO UPDATE ... WHERE expired, so the "is it free?" check and
// the take-over happen under the row's lock in one statement.
#include "common/service/storage/backends.hpp"
#include "common/service/storage/lease_store.hpp"
#include "common/service/storage/pg_db.hpp"
#include "common/service/storage/pg_schema.hpp"
#include "common/service/storage/verifier_columns.hpp"

namespace kl::storage {
namespace {

constexpr const char* kLeaseTable =
    "CREATE TABLE IF NOT EXISTS kl_agent_leases (\n"
    "\tagent_id VARCHAR(80) NOT NULL, \n"
    "\towner VARCHAR(100) NOT NULL, \n"
    "\texpires_at TIMESTAMP WITH TIME ZONE NOT NULL, \n"
    "\tPRIMARY KEY (agent_id), \n"
    "\tCONSTRAINT fk_kl_agent_leases_verifiermain FOREIGN KEY(agent_id) REFERENCES verifiermain (agent_id) "
    "ON DELETE CASCADE\n"
    ")";

// A PostgreSQL text[] literal: {"a","b"} with " and \ escaped.
std::string text_array(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::vector<std::string> ids_of(const PgResult& r) {
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0).value_or(""));
  return out;
}

class PgLeaseStore final : public LeaseStore {
 public:
  PgLeaseStore(const std::string& conninfo, std::size_t pool_size) : pool_(conninfo, pool_size) {
    auto c = pool_.acquire();
    std::vector<std::string> cols;
    for (const auto& col : verifier_columns::kAgentColumns) cols.emplace_back(col.name);
    pg_schema::ensure(*c, pg_schema::verifier_tables(), "verifiermain", cols, "alembic_version_cloud_verifier");
    PgTransaction tx(*c);
    c->exec("SELECT pg_advisory_xact_lock(7245921)");
    c->command(kLeaseTable);
    tx.commit();
  }

  std::vector<std::string> claim(const std::string& owner, std::chrono::milliseconds ttl, std::size_t max) override {
    auto c = pool_.acquire();
    // Candidates come from a snapshot; the ON CONFLICT ... WHERE re-checks each under its row lock, so a
    // lease another verifier took in the meantime is skipped (not returned), never shared.
    return ids_of(c->exec(
        "INSERT INTO kl_agent_leases (agent_id, owner, expires_at) "
        "SELECT v.agent_id, $1, clock_timestamp() + $2 * interval '1 millisecond' FROM verifiermain v "
        "LEFT JOIN kl_agent_leases l ON l.agent_id = v.agent_id "
        "WHERE l.agent_id IS NULL OR l.expires_at < clock_timestamp() "
        "ORDER BY v.agent_id COLLATE \"C\" LIMIT $3 "
        "ON CONFLICT (agent_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at "
        "WHERE kl_agent_leases.expires_at < clock_timestamp() "
        "RETURNING agent_id",
        PgParams().text(owner).integer(ttl.count()).integer(static_cast<long long>(max))));
  }

  std::vector<std::string> renew(const std::string& owner, const std::vector<std::string>& ids,
                                 std::chrono::milliseconds ttl) override {
    if (ids.empty()) return {};
    auto c = pool_.acquire();
    // Still ours (even if just expired: nobody else has taken it, or the owner would differ).
    return ids_of(c->exec("UPDATE kl_agent_leases SET expires_at = clock_timestamp() + $2 * interval '1 millisecond' "
                          "WHERE owner = $1 AND agent_id = ANY($3::text[]) RETURNING agent_id",
                          PgParams().text(owner).integer(ttl.count()).text(text_array(ids))));
  }

  std::size_t release(const std::string& owner, const std::vector<std::string>& ids) override {
    if (ids.empty()) return 0;
    auto c = pool_.acquire();
    return static_cast<std::size_t>(
        c->exec("DELETE FROM kl_agent_leases WHERE owner = $1 AND agent_id = ANY($2::text[])",
                PgParams().text(owner).text(text_array(ids)))
            .affected());
  }

  std::vector<AgentLease> held_by(const std::string& owner) override {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT agent_id, owner, (extract(epoch FROM expires_at) * 1000)::bigint FROM kl_agent_leases "
                     "WHERE owner = $1 AND expires_at >= clock_timestamp() ORDER BY agent_id COLLATE \"C\"",
                     PgParams().text(owner));
    std::vector<AgentLease> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back({r.text(i, 0).value_or(""), r.text(i, 1).value_or(""), r.integer(i, 2).value_or(0)});
    return out;
  }

 private:
  PgPool pool_;
};

}  // namespace

std::unique_ptr<LeaseStore> make_pg_lease_store(const std::string& conninfo, std::size_t pool_size) {
  return std::make_unique<PgLeaseStore>(conninfo, pool_size);
}

}  // namespace kl::storage
