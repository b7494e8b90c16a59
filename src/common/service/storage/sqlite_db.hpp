// A single SQLite connection with the settings both stores need (WAL,
// synchronous=NORMAL, busy timeout, foreign keys as upstream enables them) and
// a cache of prepared statements. Not thread-safe by itself: the stores hold
// `mutex()` around every use.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace kl::storage {

// A cached prepared statement, reset and unbound when the Use that borrowed it ends.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* s) : stmt_(s) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind_text(int idx, const std::optional<std::string>& v);
  void bind_int(int idx, const std::optional<long long>& v);
  void bind_blob(int idx, const std::optional<std::string>& v);
  // Steps once; true if a row is available, false when done. Throws StorageError (DuplicateKey on a
  // PRIMARY KEY / UNIQUE violation).
  bool step();
  // Text of a column whatever its storage class (upstream's rows are TEXT, but a BLOB is read byte-exact).
  std::optional<std::string> column_text(int col) const;
  std::optional<std::string> column_blob(int col) const;
  std::optional<long long> column_int(int col) const;
  void reset();
  sqlite3_stmt* handle() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// Thrown by Statement::step on a uniqueness violation; the stores translate it to their own error.
struct DuplicateKey : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by Statement::step when a foreign key would dangle (foreign_keys is ON, as upstream sets it).
struct ForeignKeyViolation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SqliteDb {
 public:
  // Opens (creating if absent, along with its directory, mode 0700 as upstream) the database file;
  // ":memory:" opens a private in-memory database.
  explicit SqliteDb(const std::filesystem::path& file);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Borrow a cached statement; it is reset when the returned guard goes away.
  class Use {
   public:
    explicit Use(Statement& s) : s_(&s) {}
    ~Use() { s_->reset(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Statement* operator->() const { return s_; }
    Statement& operator*() const { return *s_; }

   private:
    Statement* s_;
  };
  Use prepare(const std::string& sql);

  void exec(const std::string& sql);
  int changes() const;
  long long last_insert_rowid() const;
  bool table_exists(const std::string& table);
  std::set<std::string> columns(const std::string& table);
  const std::filesystem::path& path() const { return path_; }
  std::mutex& mutex() { return mu_; }

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> cache_;
  std::mutex mu_;
};

// Refuses (StorageError naming the database, the revision found and `supported`) a database whose alembic
// version table `table` records any other revision than `supported`, older or newer alike: their schemas differ
// from the one the stores read and write. A missing table or an empty one passes (a fresh file). Reads only:
// alembic's bookkeeping is upstream's and never modified here.
void check_alembic_revision(SqliteDb& db, const std::string& table, const std::string& supported);
// The same check on a file through a read-only connection, before anything (even journal_mode) is written to
// it; a file that does not exist yet passes.
void check_alembic_revision_file(const std::filesystem::path& file, const std::string& table,
                                 const std::string& supported);

// BEGIN IMMEDIATE ... COMMIT; rolls back if destroyed before commit() (an exception on the way).
class Transaction {
 public:
  explicit Transaction(SqliteDb& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace kl::storage
