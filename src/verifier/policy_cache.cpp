#include "verifier/policy_cache.hpp"

#include <stdexcept>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/policy/policy_upload.hpp"
#include "common/attest/policy/runtime_policy.hpp"

namespace kl::verifier {

namespace {

std::string content_key(const std::string& text) {
  return hex_encode(crypto::digest(crypto::HashAlg::sha256, as_bytes(text)));
}

template <class Map>
void drop_expired(Map& m) {
  for (auto it = m.begin(); it != m.end();) {
    if constexpr (requires { it->second.value; })
      it = it->second.value.expired() ? m.erase(it) : std::next(it);
    else
      it = it->second.expired() ? m.erase(it) : std::next(it);
  }
}

}  // namespace

std::shared_ptr<const policy::CompiledPolicy> PolicyCache::runtime_policy(std::optional<long long> id) {
  std::lock_guard lk(mu_);
  auto empty = [&] {
    if (!empty_) empty_ = policy::CompiledPolicy::compile(policy::empty_runtime_policy());
    return empty_;
  };
  if (!id) return empty();
  if (auto it = runtime_by_id_.find(*id); it != runtime_by_id_.end())
    if (auto p = it->second.value.lock()) return p;
  // Loaded under the lock: agents sharing a policy that is not compiled yet wait for one compilation.
  const auto row = store_.find_runtime_policy_by_id(*id);
  if (!row) throw std::runtime_error("runtime policy " + std::to_string(*id) + " not found");
  if (!row->ima_policy || row->ima_policy->empty()) return empty();
  const std::string key = content_key(*row->ima_policy);
  std::shared_ptr<const policy::CompiledPolicy> p;
  if (auto it = runtime_by_content_.find(key); it != runtime_by_content_.end()) p = it->second.lock();
  if (!p) {
    try {
      p = policy::CompiledPolicy::compile(policy::deserialize_runtime_policy(*row->ima_policy));
    } catch (const std::exception& e) {
      throw std::runtime_error("runtime policy " + row->name + " cannot be used: " + e.what());
    }
    ++runtime_compiles_;
    drop_expired(runtime_by_content_);
    runtime_by_content_[key] = p;
  }
  drop_expired(runtime_by_id_);
  runtime_by_id_[*id] = Slot<policy::CompiledPolicy>{p, row->name, key};
  return p;
}

std::shared_ptr<const MbPolicyData> PolicyCache::mb_policy(std::optional<long long> id) {
  if (!id) return nullptr;
  std::lock_guard lk(mu_);
  if (auto it = mb_by_id_.find(*id); it != mb_by_id_.end())
    if (auto p = it->second.value.lock()) return p;
  const auto row = store_.find_mb_policy_by_id(*id);
  if (!row || !row->mb_policy) return nullptr;
  const std::string key = content_key(*row->mb_policy);
  std::shared_ptr<const MbPolicyData> p;
  if (auto it = mb_by_content_.find(key); it != mb_by_content_.end()) p = it->second.lock();
  if (!p) {
    p = std::make_shared<const MbPolicyData>(make_mb_policy_data(row->mb_policy));
    ++mb_parses_;
    drop_expired(mb_by_content_);
    mb_by_content_[key] = p;
  }
  drop_expired(mb_by_id_);
  mb_by_id_[*id] = Slot<MbPolicyData>{p, row->name, key};
  return p;
}

void PolicyCache::invalidate_runtime(const std::string& name) {
  std::lock_guard lk(mu_);
  for (auto it = runtime_by_id_.begin(); it != runtime_by_id_.end();) {
    // Content-keyed entries stay valid (same text, same compiled form); only the name -> row link goes.
    it = it->second.name == name ? runtime_by_id_.erase(it) : std::next(it);
  }
  ++generation_;
}

void PolicyCache::invalidate_all() {
  std::lock_guard lk(mu_);
  // Every row link goes; agents re-read their rows next round, and unchanged texts find their compiled form
  // again by content.
  runtime_by_id_.clear();
  mb_by_id_.clear();
  ++generation_;
}

void PolicyCache::invalidate_mb(const std::string& name) {
  std::lock_guard lk(mu_);
  for (auto it = mb_by_id_.begin(); it != mb_by_id_.end();) {
    it = it->second.name == name ? mb_by_id_.erase(it) : std::next(it);
  }
  ++generation_;
}

PolicyCache::Stats PolicyCache::stats() const {
  std::lock_guard lk(mu_);
  Stats s;
  for (const auto& [k, w] : runtime_by_content_) s.runtime_live += w.expired() ? 0 : 1;
  for (const auto& [k, w] : mb_by_content_) s.mb_live += w.expired() ? 0 : 1;
  s.runtime_compiles = runtime_compiles_;
  s.mb_parses = mb_parses_;
  return s;
}

}  // namespace kl::verifier
