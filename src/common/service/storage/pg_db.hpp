// PostgreSQL access through libpq: a small fixed pool of connections shared by every thread of a
// process (never one per thread), statements prepared once per connection, and a result wrapper.
// libpq types stay out of this header.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/service/storage/store_stats.hpp"

struct pg_conn;
struct pg_result;

namespace kl::storage {

// Thrown on SQLSTATE 23505 (unique_violation) / 23503 (foreign_key_violation); stores translate them.
struct PgDuplicateKey : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct PgForeignKeyViolation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Positional parameters ($1, $2, ...) in libpq's text format, except bytea values which are sent binary.
class PgParams {
 public:
  PgParams& text(const std::optional<std::string>& v);
  PgParams& integer(const std::optional<long long>& v);
  PgParams& boolean(const std::optional<bool>& v);
  PgParams& bytes(const std::optional<std::string>& v);
  size_t size() const { return values_.size(); }

 private:
  friend class PgConnection;
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
};

// A query's result rows (text format).
class PgResult {
 public:
  explicit PgResult(pg_result* r) : r_(r) {}
  ~PgResult();
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;

  int rows() const;
  long long affected() const;  // rows changed by INSERT/UPDATE/DELETE
  std::optional<std::string> text(int row, int col) const;
  std::optional<long long> integer(int row, int col) const;
  std::optional<bool> boolean(int row, int col) const;
  std::optional<std::string> bytes(int row, int col) const;  // bytea, decoded

 private:
  pg_result* r_;
};

class PgPool;

// One server connection. Used by one thread at a time (through PgPool::Lease).
class PgConnection {
 public:
  PgConnection(const std::string& conninfo, PgPool* pool);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` as a statement prepared on first use on this connection. Throws PgDuplicateKey,
  // PgForeignKeyViolation or StorageError.
  PgResult exec(const std::string& sql, const PgParams& params = {});
  // Plain (unprepared, parameterless) command, e.g. DDL or BEGIN.
  void command(const std::string& sql);
  // Pipelined execution of one prepared statement for many parameter sets (one round trip for the lot);
  // returns the rows affected by each. Runs inside the caller's transaction.
  std::vector<long long> exec_batch(const std::string& sql, const std::vector<PgParams>& batch);
  bool ok() const;  // false once the server connection is lost (the pool then reconnects)
  // Whether the idle connection is still usable, without a round trip: a server that ended it (restart,
  // idle timeout) has sent something or closed the socket.
  bool alive();

 private:
  const std::string& prepared_name(const std::string& sql, int nparams);
  PgResult check(pg_result* r, const std::string& sql);
  pg_conn* c_ = nullptr;
  PgPool* pool_;
  std::map<std::string, std::string> prepared_;
};

// BEGIN ... COMMIT on one leased connection; ROLLBACK if destroyed before commit().
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c);
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  void commit();

 private:
  PgConnection& c_;
  bool done_ = false;
};

// A fixed number of connections opened up front (so a wrong URL fails at start-up, not on the first
// request); acquire() waits for a free one.
class PgPool {
 public:
  PgPool(std::string conninfo, size_t size);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  class Lease {
   public:
    Lease(PgPool& p, std::unique_ptr<PgConnection> c) : p_(&p), c_(std::move(c)) {}
    ~Lease();
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    PgConnection* operator->() const { return c_.get(); }
    PgConnection& operator*() const { return *c_; }

   private:
    PgPool* p_;
    std::unique_ptr<PgConnection> c_;
  };
  Lease acquire();

  // Fills pool_size / connections_open / connections_in_use.
  void fill(StoreStats& s) const;
  size_t size() const { return size_; }

 private:
  void give_back(std::unique_ptr<PgConnection> c);
  std::string conninfo_;
  size_t size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t open_ = 0;
};

// Converts a SQLAlchemy-style URL (postgresql[+driver]://user:pass@host:port/db?opts) to a libpq
// connection URI: the "+driver" part is dropped, the rest is passed on as it is.
std::string pg_conninfo_from_url(const std::string& url);

}  // namespace kl::storage
