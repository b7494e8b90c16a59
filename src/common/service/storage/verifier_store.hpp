// Verifier persistence: upstream's `verifiermain`, `allowlists` (runtime
// policies) and `mbpolicies` tables with their columns and encodings (spec
// §8.2-8.4), so an existing cv_data.sqlite is used in place.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/service/storage/registrar_store.hpp"  // DuplicateAgent, StorageError

namespace kl::storage {

// One row of `verifiermain` in the DB's own encodings: JSON-typed columns (tpm_policy, meta_data,
// accept_tpm_*_algs, ima_pcrs, learned_ima_keyrings, tpm_clockinfo) are the JSON text as stored
// (tpm_policy is a JSON-encoded *string*, e.g. "\"{\\\"mask\\\": \\\"0x400\\\"}\""); the callers
// encode/decode. NULL columns are nullopt.
struct VerifierAgent {
  std::string agent_id;
  std::optional<std::string> v, ip;
  std::optional<int> port;
  std::optional<int> operational_state;
  std::optional<std::string> public_key, tpm_policy, meta_data, revocation_key;
  std::optional<int> tpm_version;
  std::optional<std::string> accept_tpm_hash_algs, accept_tpm_encryption_algs, accept_tpm_signing_algs;
  std::optional<std::string> hash_alg, enc_alg, sign_alg;
  std::optional<std::string> ima_sign_verification_keys;
  std::optional<std::string> verifier_id, verifier_ip;
  std::optional<int> verifier_port;
  std::optional<long long> boottime;
  std::optional<std::string> ima_pcrs;
  std::optional<Bytes> pcr10;  // BLOB: the running PCR value
  std::optional<long long> next_ima_ml_entry;
  std::optional<int> severity_level;
  std::optional<std::string> last_event_id, learned_ima_keyrings, supported_version, ak_tpm, mtls_cert;
  std::optional<long long> attestation_count;
  std::optional<long long> ima_policy_id;  // -> allowlists.id
  std::optional<std::string> tpm_clockinfo;
  std::optional<long long> last_received_quote, last_successful_attestation;
  std::optional<long long> mb_policy_id;  // -> mbpolicies.id
  bool accept_attestations = true;
  std::optional<long long> consecutive_attestation_failures;

  bool operator==(const VerifierAgent&) const = default;
};

// A row of `allowlists`. `id` is assigned by the database on insert (ignored there).
struct RuntimePolicy {
  long long id = 0;
  std::string name;
  std::optional<std::string> tpm_policy, ima_policy, checksum;
  std::optional<int> generator;

  bool operator==(const RuntimePolicy&) const = default;
};

// A row of `mbpolicies`.
struct MbPolicy {
  long long id = 0;
  std::string name;
  std::optional<std::string> mb_policy;

  bool operator==(const MbPolicy&) const = default;
};

struct DuplicatePolicy : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A policy still referenced by an agent cannot be deleted (foreign key, as upstream enforces it).
struct PolicyInUse : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thread-safe. Every mutating call is one transaction, committed before it returns.
class VerifierStore {
 public:
  virtual ~VerifierStore() = default;

  // --- agents
  virtual std::optional<VerifierAgent> find_agent(const std::string& agent_id) = 0;
  // All agents, or only those whose verifier_id equals `verifier_id` (how several verifiers split a fleet).
  virtual std::vector<VerifierAgent> load_agents(const std::optional<std::string>& verifier_id) = 0;
  virtual std::vector<std::string> list_agent_ids(const std::optional<std::string>& verifier_id) = 0;
  // Inserts the agent and, when given, new policies it owns, in one transaction (POST /agents): a given
  // runtime / mb policy is inserted first and the agent's ima_policy_id / mb_policy_id point at it.
  // Throws DuplicateAgent / DuplicatePolicy (nothing is written then). Returns the agent as stored.
  virtual VerifierAgent add_agent(VerifierAgent agent, const std::optional<RuntimePolicy>& new_runtime_policy,
                                  const std::optional<MbPolicy>& new_mb_policy) = 0;
  virtual bool update_agent(const VerifierAgent& agent) = 0;  // false if the id does not exist
  // Batch write of many agents' state in one transaction (the verifier's single writer); returns how
  // many existed and were updated.
  virtual size_t update_agents(const std::vector<VerifierAgent>& agents) = 0;
  // Deletes the agent, its push-mode rows, and the runtime / mb policies named after it (upstream's
  // DELETE /agents does the same), in one transaction. False if the agent did not exist.
  virtual bool remove_agent(const std::string& agent_id) = 0;

  // --- runtime policies (allowlists), addressed by their unique name
  virtual std::optional<RuntimePolicy> find_runtime_policy(const std::string& name) = 0;
  virtual std::optional<RuntimePolicy> find_runtime_policy_by_id(long long id) = 0;
  virtual std::vector<std::string> list_runtime_policy_names() = 0;
  virtual long long insert_runtime_policy(const RuntimePolicy& p) = 0;  // new id; DuplicatePolicy on name
  virtual bool update_runtime_policy(const RuntimePolicy& p) = 0;       // by name; false if absent
  virtual bool remove_runtime_policy(const std::string& name) = 0;     // false if absent; PolicyInUse

  // --- measured-boot policies (mbpolicies)
  virtual std::optional<MbPolicy> find_mb_policy(const std::string& name) = 0;
  virtual std::optional<MbPolicy> find_mb_policy_by_id(long long id) = 0;
  virtual std::vector<std::string> list_mb_policy_names() = 0;
  virtual long long insert_mb_policy(const MbPolicy& p) = 0;
  virtual bool update_mb_policy(const MbPolicy& p) = 0;
  virtual bool remove_mb_policy(const std::string& name) = 0;

  // Agents per operational_state (NULL state counted as -1), of one verifier_id or all.
  virtual std::vector<std::pair<int, std::size_t>> count_by_state(const std::optional<std::string>& verifier_id) {
    std::map<int, std::size_t> m;
    for (const auto& a : load_agents(verifier_id)) ++m[a.operational_state.value_or(-1)];
    return {m.begin(), m.end()};
  }
  // Backend, pool and latency figures for /metrics (stores opened by open_verifier_store report them).
  virtual StoreStats stats() const { return {}; }
};

// "sqlite" -> <keylime_dir>/cv_data.sqlite; other URLs as open_registrar_store().
std::unique_ptr<VerifierStore> open_verifier_store(const std::string& database_url,
                                                   const std::filesystem::path& keylime_dir,
                                                   const StoreOptions& options = {});

}  // namespace kl::storage
