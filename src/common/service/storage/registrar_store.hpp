// Registrar persistence: the agents table (`registrarmain`) with upstream
// Keylime's columns and encodings, so an existing reg_data.sqlite is used in
// place and a database we write can be handed back to upstream.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/service/storage/store_stats.hpp"

namespace kl::storage {

// One row of upstream's `registrarmain`, in the DB's own encodings (spec §8.1): binary fields are base64 text,
// ekcert/iak_cert/idevid_cert base64 DER, mtls_cert base64 DER or "disabled".
struct RegistrarAgent {
  std::string agent_id;
  std::optional<std::string> key, aik_tpm, ek_tpm, ekcert, iak_tpm, idevid_tpm, iak_cert, idevid_cert, mtls_cert, ip;
  std::optional<int> port;
  bool active = false;
  std::optional<bool> virtual_flag;          // legacy column `virtual`
  std::optional<std::string> provider_keys;  // legacy column
  int regcount = 0;

  bool operator==(const RegistrarAgent&) const = default;
};

struct DuplicateAgent : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thread-safe. Every mutating call is one transaction, committed before it returns.
class RegistrarStore {
 public:
  virtual ~RegistrarStore() = default;
  virtual std::optional<RegistrarAgent> find(const std::string& agent_id) = 0;
  virtual std::vector<std::string> list_ids() = 0;
  virtual void insert(const RegistrarAgent& agent) = 0;  // throws DuplicateAgent if the id exists
  virtual bool update(const RegistrarAgent& agent) = 0;  // false if the id does not exist
  virtual bool remove(const std::string& agent_id) = 0;  // false if absent
  virtual bool set_active(const std::string& agent_id, bool active) = 0;
  // Delete only if it is still inactive (used on a failed activation); true if deleted.
  virtual bool remove_if_inactive(const std::string& agent_id) = 0;
  // Backend, pool and latency figures for /metrics (stores opened by open_registrar_store report them).
  virtual StoreStats stats() const { return {}; }
};

struct StoreOptions {
  // PostgreSQL: connections in the process's pool, shared by all threads ([registrar|verifier]
  // database_pool_sz_ovfl, first number; see pool_size_from_config). Unused by SQLite (one connection).
  std::size_t pool_size = 5;
};

// database_url as upstream (see resolve_database_url): "sqlite" -> <keylime_dir>/reg_data.sqlite,
// "sqlite:////abs/path.sqlite", or "postgresql://user:pass@host:port/db" (StorageError if this build has no
// PostgreSQL backend, or the server cannot be reached / the schema is too old).
std::unique_ptr<RegistrarStore> open_registrar_store(const std::string& database_url,
                                                     const std::filesystem::path& keylime_dir,
                                                     const StoreOptions& options = {});

}  // namespace kl::storage
