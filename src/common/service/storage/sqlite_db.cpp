#include "common/service/storage/sqlite_db.hpp"

#include <sqlite3.h>

#include <system_error>

#include "common/service/storage/registrar_store.hpp"

namespace kl::storage {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw StorageError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// Any other revision, older or newer: the schema is not the one the stores were written for.
[[noreturn]] void refuse_revision(const fs::path& file, const std::string& table, const std::string& found,
                                  const std::string& supported) {
  throw StorageError("database " + file.string() + " is at alembic revision " + found + " (" + table +
                     "), but this keylime-cpp supports only revision " + supported +
                     ": an older database must first be upgraded by upstream Keylime (auto_migrate_db = True), "
                     "a newer one needs a newer keylime-cpp; the database was not changed");
}

}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind_text(int idx, const std::optional<std::string>& v) {
  const int rc = v ? sqlite3_bind_text(stmt_, idx, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT)
                   : sqlite3_bind_null(stmt_, idx);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), "bind");
}

void Statement::bind_blob(int idx, const std::optional<std::string>& v) {
  const int rc = v ? sqlite3_bind_blob(stmt_, idx, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT)
                   : sqlite3_bind_null(stmt_, idx);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), "bind");
}

void Statement::bind_int(int idx, const std::optional<long long>& v) {
  const int rc = v ? sqlite3_bind_int64(stmt_, idx, *v) : sqlite3_bind_null(stmt_, idx);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), "bind");
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  const int ext = sqlite3_extended_errcode(db);
  if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) throw DuplicateKey(sqlite3_errmsg(db));
  if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) throw ForeignKeyViolation(sqlite3_errmsg(db));
  fail(db, std::string("SQL step failed (") + sqlite3_sql(stmt_) + ")");
}

std::optional<std::string> Statement::column_text(int col) const {
  switch (sqlite3_column_type(stmt_, col)) {
    case SQLITE_NULL: return std::nullopt;
    case SQLITE_BLOB: return column_blob(col);
    default: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
      return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
    }
  }
}

std::optional<std::string> Statement::column_blob(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<long long> Statement::column_int(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt_, col);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqliteDb::SqliteDb(const fs::path& file) : path_(file) {
  if (file != ":memory:" && file.has_parent_path()) {
    std::error_code ec;
    if (!fs::exists(file.parent_path(), ec)) {
      fs::create_directories(file.parent_path(), ec);
      if (ec) throw StorageError("cannot create database directory " + file.parent_path().string() + ": " + ec.message());
      fs::permissions(file.parent_path(), fs::perms::owner_all, ec);
    }
  }
  const int rc = sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StorageError("cannot open database " + file.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 1);
  // Another process (an operator's sqlite3 shell, a second service on the same file) may hold the lock
  // briefly; wait for it rather than failing a registration.
  sqlite3_busy_timeout(db_, 5000);
  try {
    // WAL + NORMAL: a commit is durable against a process crash without an fsync per transaction,
    // which is what makes thousands of small committed writes per second possible.
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");  // upstream turns referential integrity on for every connection
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteDb::~SqliteDb() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

SqliteDb::Use SqliteDb::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
        SQLITE_OK)
      fail(db_, "cannot prepare SQL (" + sql + ")");
    it = cache_.emplace(sql, std::make_unique<Statement>(s)).first;
  }
  return Use(*it->second);
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw StorageError("SQL failed (" + sql.substr(0, 60) + "): " + msg);
  }
}

int SqliteDb::changes() const { return sqlite3_changes(db_); }

long long SqliteDb::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

bool SqliteDb::table_exists(const std::string& table) {
  auto s = prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  s->bind_text(1, table);
  return s->step();
}

std::set<std::string> SqliteDb::columns(const std::string& table) {
  std::set<std::string> out;
  auto s = prepare("SELECT name FROM pragma_table_info(?1)");
  s->bind_text(1, table);
  while (s->step())
    if (auto n = s->column_text(0)) out.insert(*n);
  return out;
}

void check_alembic_revision(SqliteDb& db, const std::string& table, const std::string& supported) {
  if (!db.table_exists(table)) return;
  std::string found;
  {
    auto s = db.prepare("SELECT version_num FROM \"" + table + "\"");
    while (s->step()) {
      const std::string v = s->column_text(0).value_or("");
      if (v != supported) found += std::string(found.empty() ? "" : ", ") + (v.empty() ? "<empty>" : v);
    }
  }
  if (!found.empty())
    refuse_revision(db.path(), table, found, supported);
}

void check_alembic_revision_file(const fs::path& file, const std::string& table, const std::string& supported) {
  std::error_code ec;
  if (file == ":memory:" || !fs::exists(file, ec)) return;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw StorageError("cannot open database " + file.string() + ": " + msg);
  }
  std::string found, error;
  sqlite3_stmt* st = nullptr;
  const std::string sql = "SELECT version_num FROM \"" + table + "\"";
  const bool has_table = [&] {
    sqlite3_stmt* q = nullptr;
    bool yes = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1, &q, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(q, 1, table.c_str(), -1, SQLITE_TRANSIENT);
      yes = sqlite3_step(q) == SQLITE_ROW;
    } else {
      error = sqlite3_errmsg(db);
    }
    sqlite3_finalize(q);
    return yes;
  }();
  if (has_table && sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      const std::string v = t ? t : "";
      if (v != supported) found += std::string(found.empty() ? "" : ", ") + (v.empty() ? "<empty>" : v);
    }
  } else if (has_table) {
    error = sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (!error.empty()) throw StorageError("cannot read " + table + " in " + file.string() + ": " + error);
  if (!found.empty())
    refuse_revision(file, table, found, supported);
}

// BEGIN/COMMIT/ROLLBACK go through cached statements too: re-parsing them costs as much as a small write.
Transaction::Transaction(SqliteDb& db) : db_(db) { db_.prepare("BEGIN IMMEDIATE")->step(); }

Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.prepare("ROLLBACK")->step();
    } catch (...) {
      // The transaction is already gone (SQLite rolls back on some errors by itself).
    }
  }
}

void Transaction::commit() {
  db_.prepare("COMMIT")->step();
  done_ = true;
}

}  // namespace kl::storage
