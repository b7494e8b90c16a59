// A runtime policy in the form built for lookups: one arena holding every path and digest, hash
// tables keyed by path, excludes compiled once. Immutable after build, so one instance
// (std::shared_ptr<const CompiledPolicy>) serves every agent that uses the policy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/policy/exclude_regex.hpp"
#include "common/attest/policy/runtime_policy.hpp"

namespace kl::policy {

// path -> list of accepted digests. Lowercase-hex values are stored as raw bytes and compared
// as bytes; any other string (uppercase, "sha256:..." prefixes) can never equal a digest's hex,
// exactly as upstream's string comparison, and is kept only for the failure context.
// Layout for lookups over 100k paths: an open-addressing index of (hash, offset) slots and one arena
// where each path is followed by its digests, so a lookup touches about two cache lines.
class DigestTable {
 public:
  DigestTable() = default;
  explicit DigestTable(const DigestMap& map);
  // From a JSON object {"<path>": ["<hex>", ...]} without building a DigestMap first (policy load
  // time for 100k entries). Throws kl::ParseError for wrong JSON types.
  static DigestTable from_json(const nlohmann::json& object, const char* what);
  DigestTable(DigestTable&&) = default;
  DigestTable& operator=(DigestTable&&) = default;
  DigestTable(const DigestTable&) = delete;
  DigestTable& operator=(const DigestTable&) = delete;

  struct Hit {
    const char* record = nullptr;  // into the table's arena: valid while the table lives
    bool contains(ByteView digest) const;
    std::vector<std::string> as_strings() const;  // the policy's values, as written
  };
  std::optional<Hit> find(std::string_view path) const;
  // Cache hints for a loop with other work to do before its find(path): first the slot, then (once the slot
  // is likely cached) the record it points to. Never change a result; cost a hash and a probe.
  void prefetch_slot(std::string_view path) const;
  void prefetch_record(std::string_view path) const;
  std::size_t size() const { return size_; }
  std::size_t memory_bytes() const;

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t offset = kEmpty;  // record offset in arena_
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
  };
  template <class Object>
  void build(const Object& entries);
  std::vector<char> arena_;  // records: u32 path_len, u32 count, path, then per value u8 raw, u16 len, bytes
  std::vector<Slot> slots_;  // power-of-two size, linear probing
  std::size_t size_ = 0;
};

class CompiledPolicy {
 public:
  // Throws std::invalid_argument for a bad exclude regex (message "Invalid regex: ...").
  static std::shared_ptr<const CompiledPolicy> compile(const RuntimePolicy& policy);
  // Convenience: runtime_policy_from_json + compile.
  static std::shared_ptr<const CompiledPolicy> compile(const nlohmann::json& policy);

  const DigestTable& digests() const { return digests_; }
  const DigestTable& keyrings() const { return keyrings_; }
  const DigestTable& ima_buf() const { return ima_buf_; }
  const ExcludeRegex& excludes() const { return *excludes_; }
  // `ima.log_hash_alg`; an invalid name falls back to sha1 (upstream warns and defaults).
  crypto::HashAlg log_hash_alg() const { return log_hash_alg_; }
  // Keyring name in `ima.ignored_keyrings`, or that list contains "*".
  bool keyring_ignored(std::string_view name) const;
  // `verification-keys` parsed as an IMA keyring (nullopt when empty or unusable).
  const std::optional<ima::ImaKeyring>& verification_keys() const { return verification_keys_; }
  std::int64_t generator() const { return generator_; }
  std::size_t memory_bytes() const;  // approximate heap use, for the sharing budget

 private:
  CompiledPolicy() = default;
  DigestTable digests_, keyrings_, ima_buf_;
  std::unique_ptr<ExcludeRegex> excludes_;
  crypto::HashAlg log_hash_alg_ = crypto::HashAlg::sha1;
  std::vector<std::string> ignored_keyrings_;
  bool ignore_all_keyrings_ = false;
  std::optional<ima::ImaKeyring> verification_keys_;
  std::int64_t generator_ = 1;
};

}  // namespace kl::policy
