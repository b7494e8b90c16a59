// Upstream Keylime's PostgreSQL tables (alembic head a59cc9366774) as SQLAlchemy creates them on PostgreSQL:
// the same names, columns and constraints as the SQLite schema, with PostgreSQL's types (BLOB -> BYTEA,
// autoincrement INTEGER keys -> SERIAL, BOOLEAN a real boolean).
#pragma once

#include <string>
#include <vector>

#include "common/service/storage/pg_db.hpp"

namespace kl::storage::pg_schema {

inline constexpr const char* kAlembicRevision = "a59cc9366774";

struct Table {
  const char* name;  // table or index name (indexes start with "ix_")
  const char* ddl;
};

const std::vector<Table>& registrar_tables();  // alembic_version_registrar, registrarmain
const std::vector<Table>& verifier_tables();   // alembic_version_cloud_verifier, allowlists, mbpolicies, ...

// Creates the absent tables of `tables` and stamps `alembic_table` with kAlembicRevision when it creates
// it; an existing `main_table` is used as it is after checking it has `main_columns` (an older upstream
// revision must be migrated by upstream first). Serialised across processes by an advisory lock, so
// two services starting on one database do not race.
void ensure(PgConnection& c, const std::vector<Table>& tables, const std::string& main_table,
            const std::vector<std::string>& main_columns, const std::string& alembic_table);

}  // namespace kl::storage::pg_schema
