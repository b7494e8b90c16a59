// The storage tests run against both backends: GENERATE(from_range(storage_backends())) in a test case
// gives "sqlite" and "postgresql" (a private server, see support/pg_server.hpp; skipped only with
// KL_SKIP_PG=1). TestDb gives each run a fresh database and a raw query on it.
#pragma once
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/pg_server.hpp"
#include "support/temp_dir.hpp"

namespace storage_test {

inline std::vector<std::string> storage_backends() {
  if (kl::testing::pg_skipped()) {
    WARN("KL_SKIP_PG=1: PostgreSQL variant skipped");
    return {"sqlite"};
  }
  return {"sqlite", "postgresql"};
}

class TestDb {
 public:
  TestDb(std::string backend, const std::string& sqlite_file) : backend_(std::move(backend)) {
    if (is_pg()) {
      url_ = kl::testing::shared_pg_server().create_database();
    } else {
      file_ = dir_.path() / sqlite_file;
      url_ = "sqlite:///" + file_.string();  // sqlite://// + absolute path
    }
  }
  bool is_pg() const { return backend_ == "postgresql"; }
  const std::string& backend() const { return backend_; }
  const std::string& url() const { return url_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // First column of the first row, as text ("NULL" for NULL, "<no row>"), read by another connection.
  std::string query(const std::string& sql) const {
    if (is_pg()) return kl::testing::shared_pg_server().query(url_, sql);
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open_v2(file_.c_str(), &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr);
    INFO(sqlite3_errmsg(h));
    REQUIRE(rc == SQLITE_OK);
    std::string out = "<no row>";
    if (sqlite3_step(s) == SQLITE_ROW) {
      const auto* t = sqlite3_column_text(s, 0);
      out = t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    sqlite3_finalize(s);
    sqlite3_close(h);
    return out;
  }

 private:
  std::string backend_;
  kl::testing::TempDir dir_;
  std::filesystem::path file_;
  std::string url_;
};

}  // namespace storage_test
