// Agent leases for several verifiers sharing one fleet on one PostgreSQL database: each agent of
// verifiermain is polled by the verifier holding its lease. A lease has an owner (the verifier's uuid)
// and an expiry kept in the database's own clock, so verifiers' clocks need not agree. Claim, renew and
// release are single atomic statements: two verifiers can never both hold one agent's lease.
//
// How a verifier uses it: claim() new agents every few seconds (up to its share), renew() the ones it
// polls well within the TTL (e.g. every TTL/3) and stop polling any agent renew() does not return (it
// lost the lease: it expired and another verifier took it), release() on shutdown / delete so another
// verifier takes over at once rather than after the TTL.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/service/storage/registrar_store.hpp"  // StoreOptions, StorageError

namespace kl::storage {

struct AgentLease {
  std::string agent_id, owner;
  long long expires_at_ms = 0;  // database clock, unix milliseconds
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // Takes up to `max` agents of verifiermain that have no lease or an expired one, for `owner`, valid for
  // `ttl` from now (database clock). Returns the agents claimed (never one another owner holds).
  virtual std::vector<std::string> claim(const std::string& owner, std::chrono::milliseconds ttl, std::size_t max) = 0;
  // Extends the leases of `ids` that `owner` still holds; returns those (an id absent from the result is lost).
  virtual std::vector<std::string> renew(const std::string& owner, const std::vector<std::string>& ids,
                                         std::chrono::milliseconds ttl) = 0;
  // Gives up the leases of `ids` held by `owner`; returns how many there were.
  virtual std::size_t release(const std::string& owner, const std::vector<std::string>& ids) = 0;
  // Unexpired leases of `owner`, by agent id.
  virtual std::vector<AgentLease> held_by(const std::string& owner) = 0;
};

// PostgreSQL only (the table kl_agent_leases is created beside upstream's tables, with a foreign key to
// verifiermain that deletes an agent's lease with the agent). A SQLite URL throws StorageError.
std::unique_ptr<LeaseStore> open_lease_store(const std::string& database_url, const std::filesystem::path& keylime_dir,
                                             const StoreOptions& options = {});

}  // namespace kl::storage
