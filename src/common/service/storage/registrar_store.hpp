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
};

// database_url as upstream: "sqlite" -> <keylime_dir>/reg_data.sqlite; "sqlite:////abs/path.sqlite" also accepted;
// postgresql://... -> StorageError("PostgreSQL backend not built") for now (a later issue adds it).
std::unique_ptr<RegistrarStore> open_registrar_store(const std::string& database_url,
                                                     const std::filesystem::path& keylime_dir);

}  // namespace kl::storage
