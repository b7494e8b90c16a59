#include "common/service/storage/database_url.hpp"

#include "common/service/storage/registrar_store.hpp"

namespace kl::storage {

std::filesystem::path sqlite_path_from_url(const std::string& url_in, const std::filesystem::path& keylime_dir,
                                           const std::string& default_file) {
  std::string url = url_in;
  // Upstream reads the option with surrounding quotes/space stripped; be equally forgiving here.
  while (!url.empty() && (url.front() == ' ' || url.front() == '"')) url.erase(url.begin());
  while (!url.empty() && (url.back() == ' ' || url.back() == '"')) url.pop_back();
  if (url == "sqlite") return keylime_dir / default_file;
  if (url.rfind("postgresql", 0) == 0 || url.rfind("postgres://", 0) == 0)
    throw StorageError("PostgreSQL backend not built");
  const std::string prefix = "sqlite://";
  if (url.rfind(prefix, 0) != 0) {
    const auto colon = url.find(':');
    throw StorageError("unsupported database_url scheme '" + (colon == std::string::npos ? url : url.substr(0, colon)) +
                       "' (supported: sqlite, sqlite:///path)");
  }
  std::string rest = url.substr(prefix.size());
  if (auto q = rest.find('?'); q != std::string::npos) rest.resize(q);
  if (rest.empty()) return ":memory:";
  if (rest.front() != '/') throw StorageError("malformed SQLite database_url '" + url + "' (expected sqlite:///path)");
  rest.erase(rest.begin());  // "sqlite:///x" -> "x" (relative), "sqlite:////x" -> "/x" (absolute)
  if (rest.empty() || rest == ":memory:") return ":memory:";
  return rest;
}

}  // namespace kl::storage
