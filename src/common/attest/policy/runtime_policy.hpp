// Keylime runtime policy, format version 1 (verification.md §4.1): the JSON model, the schema check
// and (de)serialisation. Lookups go through CompiledPolicy (compiled_policy.hpp), not this model.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kl::policy {

enum class Generator : int { Unknown = 0, EmptyAllowList = 1, CompatibleAllowList = 2, LegacyAllowList = 3 };
inline constexpr std::int64_t kRuntimePolicyCurrentVersion = 1;

using DigestMap = std::map<std::string, std::vector<std::string>>;  // path/name -> hex digests

struct RuntimePolicy {
  struct Meta {
    std::int64_t version = kRuntimePolicyCurrentVersion;
    std::int64_t generator = static_cast<int>(Generator::EmptyAllowList);
    std::optional<std::string> timestamp;
  } meta;
  std::int64_t release = 0;
  DigestMap digests;
  std::vector<std::string> excludes;
  DigestMap keyrings;
  struct Ima {
    std::vector<std::string> ignored_keyrings;
    std::string log_hash_alg = "sha1";
    nlohmann::json dm_policy;  // null (the schema allows nothing else)
  } ima;
  DigestMap ima_buf;               // JSON key "ima-buf"
  std::string verification_keys;   // JSON key "verification-keys": keyring JSON text or ""

  // "has a runtime policy" in upstream's sense (push mode expects IMA): generator > 1.
  bool has_runtime_policy() const { return meta.generator > 1; }
};

// Upstream EMPTY_RUNTIME_POLICY: meta {version 1, generator 1}, everything empty, log_hash_alg sha1.
RuntimePolicy empty_runtime_policy();

// RUNTIME_POLICY_SCHEMA (all top-level keys required, hex values ^[0-9a-f]{40,128}$, >= 1 per
// entry, generator 0..3, log_hash_alg sha1|sha256|sha384|sha512, dm_policy null) plus the keyring
// schema for a non-empty `verification-keys`. nullopt when valid, else a one-line reason.
std::optional<std::string> schema_error(const nlohmann::json& policy);

// Reads the model as the verifier does during attestation: tolerant of missing top-level keys
// (upstream test policies lack `release`/`generator`), which take the empty policy's values.
// Wrong JSON types throw kl::ParseError.
RuntimePolicy runtime_policy_from_json(const nlohmann::json&);
nlohmann::json to_json(const RuntimePolicy&);
// Upstream's serialisation (json.dumps: ", " and ": " separators, key order of the schema).
std::string to_text(const RuntimePolicy&);

}  // namespace kl::policy
