#include "common/service/storage/database_url.hpp"

#include <cctype>

#include "common/service/storage/registrar_store.hpp"

namespace kl::storage {

namespace {

std::string unquote(std::string url) {
  // Upstream reads the option with surrounding quotes/space stripped; be equally forgiving here.
  while (!url.empty() && (url.front() == ' ' || url.front() == '"')) url.erase(url.begin());
  while (!url.empty() && (url.back() == ' ' || url.back() == '"')) url.pop_back();
  return url;
}

bool is_postgres(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgresql+", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

}  // namespace

DatabaseLocation resolve_database_url(const std::string& url_in, const std::filesystem::path& keylime_dir,
                                      const std::string& default_file) {
  const std::string url = unquote(url_in);
  DatabaseLocation loc;
  if (url == "sqlite") {
    loc.sqlite_file = keylime_dir / default_file;
    return loc;
  }
  if (is_postgres(url)) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos)
      throw StorageError("malformed PostgreSQL database_url (expected postgresql://user:pass@host:port/db)");
    const std::string scheme = url.substr(0, scheme_end);
    if (scheme != "postgresql" && scheme != "postgres" && scheme.rfind("postgresql+", 0) != 0)
      throw StorageError("unsupported database_url scheme '" + scheme + "'");
    loc.kind = DatabaseLocation::Kind::postgresql;
    if (url.size() == scheme_end + 3)
      throw StorageError("malformed PostgreSQL database_url (expected postgresql://user:pass@host:port/db)");
    std::string rest = url.substr(scheme_end);
    if (const auto q = rest.find('?'); q != std::string::npos) {
      std::string kept;
      size_t pos = q + 1;
      while (pos <= rest.size()) {
        size_t amp = rest.find('&', pos);
        if (amp == std::string::npos) amp = rest.size();
        const std::string opt = rest.substr(pos, amp - pos);
        if (opt.rfind("pool_size=", 0) == 0)
          loc.pg_pool_size = pool_size_from_config(opt.substr(10));
        else if (!opt.empty())
          kept += (kept.empty() ? "" : "&") + opt;
        pos = amp + 1;
      }
      rest = rest.substr(0, q) + (kept.empty() ? "" : "?" + kept);
    }
    loc.pg_conninfo = "postgresql" + rest;
    return loc;
  }
  const std::string prefix = "sqlite://";
  if (url.rfind(prefix, 0) != 0) {
    const auto colon = url.find(':');
    throw StorageError("unsupported database_url scheme '" + (colon == std::string::npos ? url : url.substr(0, colon)) +
                       "' (supported: sqlite, sqlite:///path, postgresql://user:pass@host:port/db)");
  }
  std::string rest = url.substr(prefix.size());
  if (auto q = rest.find('?'); q != std::string::npos) rest.resize(q);
  if (rest.empty()) {
    loc.sqlite_file = ":memory:";
    return loc;
  }
  if (rest.front() != '/') throw StorageError("malformed SQLite database_url '" + url + "' (expected sqlite:///path)");
  rest.erase(rest.begin());  // "sqlite:///x" -> "x" (relative), "sqlite:////x" -> "/x" (absolute)
  loc.sqlite_file = (rest.empty() || rest == ":memory:") ? std::filesystem::path(":memory:") : std::filesystem::path(rest);
  return loc;
}

std::filesystem::path sqlite_path_from_url(const std::string& url, const std::filesystem::path& keylime_dir,
                                           const std::string& default_file) {
  const auto loc = resolve_database_url(url, keylime_dir, default_file);
  if (loc.kind != DatabaseLocation::Kind::sqlite) throw StorageError("not a SQLite database_url");
  return loc.sqlite_file;
}

std::size_t pool_size_from_config(const std::string& value) {
  const std::string v = unquote(value);
  size_t i = 0, n = 0;
  while (i < v.size() && v[i] == ' ') ++i;
  const size_t start = i;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])) && n <= 1000) n = n * 10 + (v[i++] - '0');
  const bool rest_ok = i == v.size() || v[i] == ',' || v[i] == ' ';
  if (i == start || n < 1 || n > 1000 || !rest_ok)
    throw StorageError("database_pool_sz_ovfl '" + v + "': expected '<pool size>,<overflow>' with a pool size of 1 to 1000");
  return n;
}

std::string with_pool_size(const std::string& url, const std::string& sz_ovfl) {
  if (!is_postgres(unquote(url)) || unquote(sz_ovfl).empty()) return url;
  const std::string u = unquote(url);
  if (u.find("?pool_size=") != std::string::npos || u.find("&pool_size=") != std::string::npos) return url;
  const std::size_t n = pool_size_from_config(sz_ovfl);
  return u + (u.find('?') == std::string::npos ? "?" : "&") + "pool_size=" + std::to_string(n);
}

}  // namespace kl::storage
