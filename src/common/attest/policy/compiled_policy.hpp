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
class DigestTable {
 public:
  DigestTable() = default;
  explicit DigestTable(const DigestMap& map);
  // Keys are views into the arena: moving keeps the arena's buffer, copying would not.
  DigestTable(DigestTable&&) = default;
  DigestTable& operator=(DigestTable&&) = default;
  DigestTable(const DigestTable&) = delete;
  DigestTable& operator=(const DigestTable&) = delete;

  struct Hit {
    const DigestTable* table;
    std::uint32_t first, count;
    bool contains(ByteView digest) const;
    std::vector<std::string> as_strings() const;  // the policy's values, as written
  };
  std::optional<Hit> find(std::string_view path) const;
  std::size_t size() const { return index_.size(); }
  std::size_t memory_bytes() const;

 private:
  struct Value {
    std::uint32_t offset;
    std::uint16_t length;
    bool raw;  // bytes (from lowercase hex) or text as written
  };
  std::vector<char> arena_;  // a vector (not a string): no small-buffer copy on move
  std::vector<Value> values_;
  std::unordered_map<std::string_view, std::pair<std::uint32_t, std::uint32_t>> index_;
  friend struct Hit;
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
