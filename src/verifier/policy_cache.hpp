// Runtime policies and measured-boot policies as the poller uses them: compiled / parsed once per stored row
// and shared by every agent that points at it (an allowlist of 100k entries compiled for each of 10k agents
// would not fit in memory). Loaded lazily from the store on first use; an entry lives as long as some agent
// holds it (the cache keeps only weak references). Rows with identical content share one compiled form.
// A policy updated or deleted through the tenant API is invalidated by name; agents pick the new version up
// on their next round (see generation()).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/attest/policy/compiled_policy.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "verifier/quote_round.hpp"

namespace kl::verifier {

class PolicyCache {
 public:
  explicit PolicyCache(storage::VerifierStore& store) : store_(store) {}

  // The compiled runtime policy of allowlists row `id`. A NULL/empty ima_policy (or no row id) gives
  // upstream's empty runtime policy. Throws std::runtime_error when the row is missing or does not compile
  // (the round then fails with internal.verifier.exception, as upstream raises).
  std::shared_ptr<const policy::CompiledPolicy> runtime_policy(std::optional<long long> id);
  // The measured-boot policy of mbpolicies row `id`; nullptr when there is none (no row id, or NULL text).
  std::shared_ptr<const MbPolicyData> mb_policy(std::optional<long long> id);

  // Forget the row(s) of that name (updated, deleted, or deleted with the agent named after them).
  void invalidate_runtime(const std::string& name);
  void invalidate_mb(const std::string& name);
  // SIGHUP: forget every row link (e.g. policies rewritten by another verifier sharing the database).
  void invalidate_all();
  // Bumped by every invalidation: a holder whose generation differs re-fetches.
  std::uint64_t generation() const { return generation_.load(); }

  struct Stats {
    std::size_t runtime_live = 0, mb_live = 0;   // entries some agent still holds
    std::uint64_t runtime_compiles = 0, mb_parses = 0;
  };
  Stats stats() const;

 private:
  template <class T>
  struct Slot {
    std::weak_ptr<const T> value;
    std::string name;
    std::string content;   // SHA-256 of the stored text
  };
  storage::VerifierStore& store_;
  mutable std::mutex mu_;
  std::map<long long, Slot<policy::CompiledPolicy>> runtime_by_id_;
  std::map<std::string, std::weak_ptr<const policy::CompiledPolicy>> runtime_by_content_;
  std::map<long long, Slot<MbPolicyData>> mb_by_id_;
  std::map<std::string, std::weak_ptr<const MbPolicyData>> mb_by_content_;
  std::shared_ptr<const policy::CompiledPolicy> empty_;
  std::atomic<std::uint64_t> generation_{0};
  std::uint64_t runtime_compiles_ = 0, mb_parses_ = 0;
};

}  // namespace kl::verifier
