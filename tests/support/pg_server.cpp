#include "support/pg_server.hpp"

#if KL_WITH_POSTGRES
#include <libpq-fe.h>
#endif
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "support/process.hpp"

namespace kl::testing {
namespace fs = std::filesystem;

namespace {

fs::path find_pg_bin() {
  if (const char* e = std::getenv("KL_PG_BIN"); e && *e) return e;
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(d.path() / "bin" / "initdb")) found.push_back(d.path() / "bin");
  if (found.empty()) {
    if (auto p = find_executable("initdb"); !p.empty()) return p.parent_path();
    throw std::runtime_error("PostgreSQL server binaries not found (apt-get install postgresql; set KL_SKIP_PG=1 to skip)");
  }
  std::sort(found.begin(), found.end());
  return found.back();
}

// initdb and postgres refuse to run as root: run them as the `postgres` user then.
std::vector<std::string> as_server_user(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  return argv;
}

void chown_tree(const fs::path& p) {
  if (::geteuid() != 0) return;
  const passwd* pw = ::getpwnam("postgres");
  if (!pw) throw std::runtime_error("running as root but there is no `postgres` user to run PostgreSQL as");
  if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + p.string() + " failed");
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (::lchown(e.path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("chown " + e.path().string() + " failed");
}

}  // namespace

bool pg_skipped() {
  if (!KL_WITH_POSTGRES) return true;  // built without the backend: nothing to test against
  const char* e = std::getenv("KL_SKIP_PG");
  return e && std::string(e) == "1";
}

const std::string& PgServer::password() {
  static const std::string p = "kl-test-p@ss:word";
  return p;
}

PgServer::PgServer() : bin_(find_pg_bin()), data_(dir_.path() / "data") {
  std::ofstream(dir_.path() / "pwfile") << password() << "\n";
  chown_tree(dir_.path());
  auto r = run_command(as_server_user({(bin_ / "initdb").string(), "-D", data_.string(), "-U", "keylime",
                                       "--pwfile", (dir_.path() / "pwfile").string(), "--auth-local=trust",
                                       "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
                                       "--no-instructions"}));
  if (r.status != 0) throw std::runtime_error("initdb failed:\n" + r.output);
  for (int attempt = 0; attempt < 5 && !running_; ++attempt) {
    port_ = free_tcp_port();
    // fsync off: test data need not survive a power cut, and the shared CI disk is slow.
    opts_ = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " +
                             dir_.path().string() + " -c fsync=off -c synchronous_commit=off -c max_connections=200";
    r = run_command(as_server_user({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-l",
                                    (dir_.path() / "server.log").string(), "-o", opts_, "-w", "-t", "60", "start"}));
    running_ = r.status == 0;
  }
  if (!running_) throw std::runtime_error("pg_ctl start failed:\n" + r.output + "\n" + log());
}

PgServer::~PgServer() {
  if (!running_) return;
  try {
    run_command(as_server_user({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-m", "immediate", "-w", "stop"}));
  } catch (...) {
    // Nothing more to do in a destructor; the temp dir goes anyway.
  }
}

void PgServer::restart() {
  auto r = run_command(as_server_user({(bin_ / "pg_ctl").string(), "-D", data_.string(), "-l",
                                       (dir_.path() / "server.log").string(), "-o", opts_, "-m", "fast", "-w", "-t",
                                       "60", "restart"}));
  if (r.status != 0) throw std::runtime_error("pg_ctl restart failed:\n" + r.output + "\n" + log());
}

std::string PgServer::url(const std::string& db) const {
  // '@' and ':' in the password must be percent-encoded in a URI.
  std::string pw;
  for (char c : password()) pw += c == '@' ? "%40" : c == ':' ? "%3A" : std::string(1, c);
  return "postgresql://keylime:" + pw + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

std::string PgServer::create_database() {
  const std::string name = "kltest_" + std::to_string(++next_db_);
  exec(url("postgres"), "CREATE DATABASE " + name);
  return url(name);
}

std::string PgServer::query(const std::string& db_url, const std::string& sql) const {
#if !KL_WITH_POSTGRES
  throw std::runtime_error("built without PostgreSQL (KL_WITH_POSTGRES=OFF)");
#else
  PGconn* c = PQconnectdb(db_url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot connect to the test PostgreSQL: " + m);
  }
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  const auto st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    out = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    throw std::runtime_error("test query failed (" + sql + "): " + out);
  }
  if (st == PGRES_COMMAND_OK || PQntuples(r) == 0)
    out = "<no row>";
  else
    out = PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0);
  PQclear(r);
  PQfinish(c);
  return out;
#endif
}

std::string PgServer::log() const {
  std::ifstream f(dir_.path() / "server.log");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

PgServer& shared_pg_server() {
  static PgServer server;
  return server;
}

}  // namespace kl::testing
