#include "common/service/storage/pg_db.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdlib>
#include <cstring>

#include "common/service/storage/registrar_store.hpp"  // StorageError

namespace kl::storage {

namespace {

std::string conn_error(const PGconn* c) {
  std::string m = c ? PQerrorMessage(c) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// Passwords must not reach logs or error messages.
std::string redact(const std::string& conninfo) {
  const auto scheme = conninfo.find("://");
  const auto at = conninfo.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return conninfo;
  const auto colon = conninfo.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return conninfo;
  return conninfo.substr(0, colon + 1) + "***" + conninfo.substr(at);
}

}  // namespace

PgParams& PgParams::text(const std::optional<std::string>& v) {
  // libpq passes text parameters as C strings: a NUL would silently cut the value short.
  if (v && v->find('\0') != std::string::npos)
    throw StorageError("a text value contains a NUL byte, which PostgreSQL cannot store");
  values_.push_back(v);
  formats_.push_back(0);
  return *this;
}
PgParams& PgParams::integer(const std::optional<long long>& v) {
  values_.push_back(v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt);
  formats_.push_back(0);
  return *this;
}
PgParams& PgParams::boolean(const std::optional<bool>& v) {
  values_.push_back(v ? std::optional<std::string>(*v ? "true" : "false") : std::nullopt);
  formats_.push_back(0);
  return *this;
}
PgParams& PgParams::bytes(const std::optional<std::string>& v) {
  values_.push_back(v);
  formats_.push_back(1);  // binary: the bytes as they are, no escaping
  return *this;
}

PgResult::~PgResult() { PQclear(r_); }

int PgResult::rows() const { return PQntuples(r_); }

long long PgResult::affected() const {
  const char* n = PQcmdTuples(r_);
  return n && *n ? std::atoll(n) : 0;
}

std::optional<std::string> PgResult::text(int row, int col) const {
  if (PQgetisnull(r_, row, col)) return std::nullopt;
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

std::optional<long long> PgResult::integer(int row, int col) const {
  if (PQgetisnull(r_, row, col)) return std::nullopt;
  return std::atoll(PQgetvalue(r_, row, col));
}

std::optional<bool> PgResult::boolean(int row, int col) const {
  if (PQgetisnull(r_, row, col)) return std::nullopt;
  return PQgetvalue(r_, row, col)[0] == 't';
}

std::optional<std::string> PgResult::bytes(int row, int col) const {
  if (PQgetisnull(r_, row, col)) return std::nullopt;
  size_t n = 0;
  unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
  if (!p) throw StorageError("cannot decode a bytea value");
  std::string out(reinterpret_cast<const char*>(p), n);
  PQfreemem(p);
  return out;
}

PgConnection::PgConnection(const std::string& conninfo, PgPool* pool) : pool_(pool) {
  c_ = PQconnectdb(conninfo.c_str());
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    const std::string m = conn_error(c_);
    PQfinish(c_);
    c_ = nullptr;
    throw StorageError("cannot connect to PostgreSQL " + redact(conninfo) + ": " + m);
  }
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);
}

PgConnection::~PgConnection() { PQfinish(c_); }

bool PgConnection::ok() const { return c_ && PQstatus(c_) == CONNECTION_OK; }

bool PgConnection::alive() {
  if (!ok()) return false;
  // We never LISTEN, so an idle connection with something to read has been ended by the server (a
  // restart's "terminating connection due to administrator command", an idle timeout) or is at EOF.
  pollfd p{PQsocket(c_), POLLIN, 0};
  const int n = ::poll(&p, 1, 0);
  return n == 0;
}

PgResult PgConnection::check(PGresult* r, const std::string& sql) {
  PgResult res(r);
  const auto st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_PIPELINE_SYNC) return res;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : conn_error(c_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (state && std::strcmp(state, "23505") == 0) throw PgDuplicateKey(msg);
  if (state && std::strcmp(state, "23503") == 0) throw PgForeignKeyViolation(msg);
  throw StorageError("PostgreSQL: " + msg + " (" + sql.substr(0, 80) + ")");
}

const std::string& PgConnection::prepared_name(const std::string& sql, int nparams) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  const std::string name = "kl" + std::to_string(prepared_.size() + 1);
  check(PQprepare(c_, name.c_str(), sql.c_str(), nparams, nullptr), sql);
  return prepared_.emplace(sql, name).first->second;
}

PgResult PgConnection::exec(const std::string& sql, const PgParams& p) {
  const std::string& name = prepared_name(sql, static_cast<int>(p.size()));
  std::vector<const char*> vals(p.size());
  std::vector<int> lens(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    vals[i] = p.values_[i] ? p.values_[i]->data() : nullptr;
    lens[i] = p.values_[i] ? static_cast<int>(p.values_[i]->size()) : 0;
  }
  return check(PQexecPrepared(c_, name.c_str(), static_cast<int>(p.size()), vals.data(), lens.data(),
                              p.formats_.data(), 0),
               sql);
}

void PgConnection::command(const std::string& sql) { check(PQexec(c_, sql.c_str()), sql); }

std::vector<long long> PgConnection::exec_batch(const std::string& sql, const std::vector<PgParams>& batch) {
  std::vector<long long> out;
  if (batch.empty()) return out;
  const std::string name = prepared_name(sql, static_cast<int>(batch.front().size()));
  if (PQenterPipelineMode(c_) != 1) throw StorageError("PostgreSQL: cannot enter pipeline mode: " + conn_error(c_));
  struct Exit {
    PGconn* c;
    ~Exit() { PQexitPipelineMode(c); }
  } exit_pipeline{c_};
  for (const auto& p : batch) {
    std::vector<const char*> vals(p.size());
    std::vector<int> lens(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      vals[i] = p.values_[i] ? p.values_[i]->data() : nullptr;
      lens[i] = p.values_[i] ? static_cast<int>(p.values_[i]->size()) : 0;
    }
    if (PQsendQueryPrepared(c_, name.c_str(), static_cast<int>(p.size()), vals.data(), lens.data(),
                            p.formats_.data(), 0) != 1)
      throw StorageError("PostgreSQL: cannot queue a statement: " + conn_error(c_));
  }
  if (PQpipelineSync(c_) != 1) throw StorageError("PostgreSQL: pipeline sync failed: " + conn_error(c_));
  // Drain every result up to the sync point even after an error, so the connection stays usable;
  // then report the first error.
  std::optional<std::string> first_error;
  bool dup = false, fk = false;
  for (;;) {
    PGresult* r = PQgetResult(c_);
    if (!r) {  // end of one statement's results
      if (!ok()) throw StorageError("PostgreSQL: connection lost: " + conn_error(c_));
      continue;
    }
    const auto st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      const char* n = PQcmdTuples(r);
      out.push_back(n && *n ? std::atoll(n) : 0);
    } else if (st != PGRES_PIPELINE_ABORTED && !first_error) {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      dup = state && std::strcmp(state, "23505") == 0;
      fk = state && std::strcmp(state, "23503") == 0;
      first_error = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  if (first_error) {
    if (dup) throw PgDuplicateKey(*first_error);
    if (fk) throw PgForeignKeyViolation(*first_error);
    throw StorageError("PostgreSQL: " + *first_error);
  }
  return out;
}

PgTransaction::PgTransaction(PgConnection& c) : c_(c) { c_.command("BEGIN"); }

PgTransaction::~PgTransaction() {
  if (done_) return;
  try {
    c_.command("ROLLBACK");
  } catch (...) {
    // The connection is broken; the pool replaces it.
  }
}

void PgTransaction::commit() {
  c_.command("COMMIT");
  done_ = true;
}

PgPool::PgPool(std::string conninfo, size_t size) : conninfo_(std::move(conninfo)), size_(size ? size : 1) {
  for (size_t i = 0; i < size_; ++i) idle_.push_back(std::make_unique<PgConnection>(conninfo_, this));
  open_ = size_;
}

PgPool::~PgPool() = default;

PgPool::Lease PgPool::acquire() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return !idle_.empty() || open_ < size_; });
    if (idle_.empty()) break;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (c->alive()) return Lease(*this, std::move(c));
    --open_;  // closed by the server since its last use: replace it rather than fail the caller's query
  }
  // A connection was dropped earlier (server restart): open its replacement outside the lock.
  ++open_;
  lk.unlock();
  try {
    return Lease(*this, std::make_unique<PgConnection>(conninfo_, this));
  } catch (...) {
    std::lock_guard g(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

void PgPool::give_back(std::unique_ptr<PgConnection> c) {
  {
    std::lock_guard lk(mu_);
    if (c->ok())
      idle_.push_back(std::move(c));
    else
      --open_;  // closed below, outside the lock; the next acquire() reconnects
  }
  cv_.notify_one();
}

PgPool::Lease::~Lease() {
  if (c_) p_->give_back(std::move(c_));
}

void PgPool::fill(StoreStats& s) const {
  std::lock_guard lk(mu_);
  s.pool_size = size_;
  s.connections_open = open_;
  s.connections_in_use = open_ - idle_.size();
}

std::string pg_conninfo_from_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw StorageError("malformed PostgreSQL database_url");
  return "postgresql" + url.substr(scheme_end);
}

}  // namespace kl::storage
