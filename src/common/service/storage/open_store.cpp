// database_url -> the store of that backend, wrapped for timing.
#include "common/service/storage/backends.hpp"
#include "common/service/storage/database_url.hpp"
#include "common/service/storage/timed_store.hpp"

namespace kl::storage {

std::unique_ptr<RegistrarStore> open_registrar_store(const std::string& database_url,
                                                     const std::filesystem::path& keylime_dir,
                                                     const StoreOptions& options) {
  const auto loc = resolve_database_url(database_url, keylime_dir, "reg_data.sqlite");
  if (loc.kind == DatabaseLocation::Kind::sqlite) return timed(make_sqlite_registrar_store(loc.sqlite_file), "sqlite");
#if KL_WITH_POSTGRES
  return timed(make_pg_registrar_store(loc.pg_conninfo, loc.pg_pool_size ? loc.pg_pool_size : options.pool_size), "postgresql");
#else
  throw StorageError("PostgreSQL backend not built (configure with -DKL_WITH_POSTGRES=ON)");
#endif
}

std::unique_ptr<VerifierStore> open_verifier_store(const std::string& database_url,
                                                   const std::filesystem::path& keylime_dir,
                                                   const StoreOptions& options) {
  const auto loc = resolve_database_url(database_url, keylime_dir, "cv_data.sqlite");
  if (loc.kind == DatabaseLocation::Kind::sqlite) return timed(make_sqlite_verifier_store(loc.sqlite_file), "sqlite");
#if KL_WITH_POSTGRES
  return timed(make_pg_verifier_store(loc.pg_conninfo, loc.pg_pool_size ? loc.pg_pool_size : options.pool_size), "postgresql");
#else
  throw StorageError("PostgreSQL backend not built (configure with -DKL_WITH_POSTGRES=ON)");
#endif
}

std::unique_ptr<LeaseStore> open_lease_store(const std::string& database_url, const std::filesystem::path& keylime_dir,
                                             const StoreOptions& options) {
  const auto loc = resolve_database_url(database_url, keylime_dir, "cv_data.sqlite");
  if (loc.kind != DatabaseLocation::Kind::postgresql)
    throw StorageError("agent leases (several verifiers on one fleet) need a PostgreSQL database_url");
#if KL_WITH_POSTGRES
  return make_pg_lease_store(loc.pg_conninfo, loc.pg_pool_size ? loc.pg_pool_size : options.pool_size);
#else
  throw StorageError("PostgreSQL backend not built (configure with -DKL_WITH_POSTGRES=ON)");
#endif
}

}  // namespace kl::storage
