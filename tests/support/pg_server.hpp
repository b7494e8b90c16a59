// A private PostgreSQL server for tests: initdb + pg_ctl (Debian's /usr/lib/postgresql/<v>/bin) into a
// temporary directory, listening on 127.0.0.1 on a free port, password (SCRAM) authentication over TCP.
// As root (CI) the server runs as the `postgres` user (initdb refuses root). Not available -> the
// constructor throws: tests then fail, unless KL_SKIP_PG=1 is set (see pg_skipped()).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "support/temp_dir.hpp"

namespace kl::testing {

// True if KL_SKIP_PG=1: PostgreSQL-backed test variants are skipped (with a warning) instead of failing.
bool pg_skipped();

class PgServer {
 public:
  PgServer();
  ~PgServer();  // pg_ctl stop -m immediate
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  std::uint16_t port() const { return port_; }
  // postgresql://keylime:<password>@127.0.0.1:<port>/<db>
  std::string url(const std::string& db) const;
  // CREATE DATABASE kltest_<n>; returns its URL.
  std::string create_database();
  // First column of the first row of `sql` run on `db_url` ("NULL" for NULL, "<no row>"); throws on an error.
  std::string query(const std::string& db_url, const std::string& sql) const;
  void exec(const std::string& db_url, const std::string& sql) const { (void)query(db_url, sql); }
  std::string log() const;
  // pg_ctl restart (fast shutdown: the server closes every client connection), same port.
  void restart();

  static const std::string& password();

 private:
  TempDir dir_;
  std::filesystem::path bin_, data_;
  std::uint16_t port_ = 0;
  int next_db_ = 0;
  std::string opts_;
  bool running_ = false;
};

// One server per test process, started on first use.
PgServer& shared_pg_server();

}  // namespace kl::testing
