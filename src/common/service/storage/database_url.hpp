// Resolution of upstream's `database_url` option to a database location.
#pragma once

#include <filesystem>
#include <string>

namespace kl::storage {

// "sqlite" -> <keylime_dir>/<default_file>; SQLAlchemy SQLite URLs: "sqlite:////abs/path" (absolute),
// "sqlite:///rel/path" (relative to the working directory), "sqlite://" (in memory -> ":memory:"); a
// "?query" suffix is ignored. postgresql://... throws StorageError("PostgreSQL backend not built"); any
// other scheme throws StorageError naming it.
std::filesystem::path sqlite_path_from_url(const std::string& database_url, const std::filesystem::path& keylime_dir,
                                           const std::string& default_file);

}  // namespace kl::storage
