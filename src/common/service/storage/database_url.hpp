// Resolution of upstream's `database_url` option to a database location.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace kl::storage {

struct DatabaseLocation {
  enum class Kind { sqlite, postgresql };
  Kind kind = Kind::sqlite;
  std::filesystem::path sqlite_file;  // Kind::sqlite
  std::string pg_conninfo;            // Kind::postgresql: a libpq connection URI (without pool_size)
  std::size_t pg_pool_size = 0;       // from a "pool_size=N" URL option; 0: not given
};

// "sqlite" -> <keylime_dir>/<default_file>; SQLAlchemy SQLite URLs: "sqlite:////abs/path" (absolute),
// "sqlite:///rel/path" (relative to the working directory), "sqlite://" (in memory -> ":memory:"); a
// "?query" suffix is ignored. SQLAlchemy PostgreSQL URLs "postgresql[+driver]://user:pass@host:port/db[?opts]"
// (and "postgres://") -> Kind::postgresql with the "+driver" dropped (libpq takes the rest as it is, so
// libpq's own options such as sslmode work); our option "pool_size=N" is taken out of the query. Any other
// scheme throws StorageError naming it.
DatabaseLocation resolve_database_url(const std::string& database_url, const std::filesystem::path& keylime_dir,
                                      const std::string& default_file);

// The SQLite file of a SQLite database_url; a PostgreSQL URL throws StorageError.
std::filesystem::path sqlite_path_from_url(const std::string& database_url, const std::filesystem::path& keylime_dir,
                                           const std::string& default_file);

// Connection pool size from upstream's `database_pool_sz_ovfl` ("<pool size>,<max overflow>", default
// "5,10"): the first number; our pool is fixed, so the overflow is not used. Throws StorageError on a
// value that is not "N" or "N,M" with 1 <= N <= 1000.
std::size_t pool_size_from_config(const std::string& database_pool_sz_ovfl);

// How the services' config loaders pass database_pool_sz_ovfl on to the store: a PostgreSQL URL without a
// pool_size option gets "pool_size=<first number>" appended; other URLs are returned unchanged. Throws
// StorageError for a bad database_pool_sz_ovfl with a PostgreSQL URL.
std::string with_pool_size(const std::string& database_url, const std::string& database_pool_sz_ovfl);

}  // namespace kl::storage
