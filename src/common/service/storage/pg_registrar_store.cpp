// PostgreSQL backend of RegistrarStore over upstream's `registrarmain` table.
#include "common/service/storage/backends.hpp"
#include "common/service/storage/pg_db.hpp"
#include "common/service/storage/pg_schema.hpp"

namespace kl::storage {
namespace {

// Column order shared by SELECT, INSERT and UPDATE below.
constexpr const char* kColumns =
    "agent_id, \"key\", aik_tpm, ek_tpm, ekcert, iak_tpm, idevid_tpm, iak_cert, idevid_cert, mtls_cert, ip, port, "
    "active, \"virtual\", provider_keys, regcount";
const std::vector<std::string> kColumnNames = {"agent_id",    "key",       "aik_tpm",  "ek_tpm",        "ekcert",
                                               "iak_tpm",     "idevid_tpm", "iak_cert", "idevid_cert",   "mtls_cert",
                                               "ip",          "port",      "active",   "virtual",       "provider_keys",
                                               "regcount"};

std::optional<long long> opt_int(const std::optional<int>& v) {
  return v ? std::optional<long long>(*v) : std::nullopt;
}

PgParams params_of(const RegistrarAgent& a) {
  PgParams p;
  p.text(a.agent_id)
      .text(a.key)
      .text(a.aik_tpm)
      .text(a.ek_tpm)
      .text(a.ekcert)
      .text(a.iak_tpm)
      .text(a.idevid_tpm)
      .text(a.iak_cert)
      .text(a.idevid_cert)
      .text(a.mtls_cert)
      .text(a.ip)
      .integer(opt_int(a.port))
      .boolean(a.active)
      .boolean(a.virtual_flag)
      .text(a.provider_keys)
      .integer(a.regcount);
  return p;
}

class PgRegistrarStore final : public RegistrarStore {
 public:
  PgRegistrarStore(const std::string& conninfo, std::size_t pool_size) : pool_(conninfo, pool_size) {
    auto c = pool_.acquire();
    pg_schema::ensure(*c, pg_schema::registrar_tables(), "registrarmain", kColumnNames, "alembic_version_registrar");
  }

  std::optional<RegistrarAgent> find(const std::string& agent_id) override {
    auto c = pool_.acquire();
    auto r = c->exec(std::string("SELECT ") + kColumns + " FROM registrarmain WHERE agent_id = $1",
                     PgParams().text(agent_id));
    if (r.rows() == 0) return std::nullopt;
    RegistrarAgent a;
    a.agent_id = r.text(0, 0).value_or("");
    a.key = r.text(0, 1);
    a.aik_tpm = r.text(0, 2);
    a.ek_tpm = r.text(0, 3);
    a.ekcert = r.text(0, 4);
    a.iak_tpm = r.text(0, 5);
    a.idevid_tpm = r.text(0, 6);
    a.iak_cert = r.text(0, 7);
    a.idevid_cert = r.text(0, 8);
    a.mtls_cert = r.text(0, 9);
    a.ip = r.text(0, 10);
    if (auto p = r.integer(0, 11)) a.port = static_cast<int>(*p);
    a.active = r.boolean(0, 12).value_or(false);
    a.virtual_flag = r.boolean(0, 13);
    a.provider_keys = r.text(0, 14);
    a.regcount = static_cast<int>(r.integer(0, 15).value_or(0));
    return a;
  }

  std::vector<std::string> list_ids() override {
    auto c = pool_.acquire();
    // COLLATE "C": byte order, as SQLite's default and independent of the database's locale.
    auto r = c->exec("SELECT agent_id FROM registrarmain ORDER BY agent_id COLLATE \"C\"");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0).value_or(""));
    return out;
  }

  void insert(const RegistrarAgent& a) override {
    auto c = pool_.acquire();
    try {
      c->exec(std::string("INSERT INTO registrarmain (") + kColumns +
                  ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
              params_of(a));
    } catch (const PgDuplicateKey&) {
      throw DuplicateAgent("agent " + a.agent_id + " is already registered");
    }
  }

  bool update(const RegistrarAgent& a) override {
    auto c = pool_.acquire();
    return c->exec("UPDATE registrarmain SET \"key\" = $2, aik_tpm = $3, ek_tpm = $4, ekcert = $5, iak_tpm = $6, "
                   "idevid_tpm = $7, iak_cert = $8, idevid_cert = $9, mtls_cert = $10, ip = $11, port = $12, "
                   "active = $13, \"virtual\" = $14, provider_keys = $15, regcount = $16 WHERE agent_id = $1",
                   params_of(a))
               .affected() > 0;
  }

  bool remove(const std::string& agent_id) override {
    auto c = pool_.acquire();
    return c->exec("DELETE FROM registrarmain WHERE agent_id = $1", PgParams().text(agent_id)).affected() > 0;
  }

  bool set_active(const std::string& agent_id, bool active) override {
    auto c = pool_.acquire();
    return c->exec("UPDATE registrarmain SET active = $2 WHERE agent_id = $1",
                   PgParams().text(agent_id).boolean(active))
               .affected() > 0;
  }

  bool remove_if_inactive(const std::string& agent_id) override {
    auto c = pool_.acquire();
    // One statement, so a concurrent activation cannot slip in between the check and the delete.
    return c->exec("DELETE FROM registrarmain WHERE agent_id = $1 AND (active IS NULL OR active = false)",
                   PgParams().text(agent_id))
               .affected() > 0;
  }

  StoreStats stats() const override {
    StoreStats s;
    pool_.fill(s);
    return s;
  }

 private:
  mutable PgPool pool_;
};

}  // namespace

std::unique_ptr<RegistrarStore> make_pg_registrar_store(const std::string& conninfo, std::size_t pool_size) {
  return std::make_unique<PgRegistrarStore>(conninfo, pool_size);
}

}  // namespace kl::storage
