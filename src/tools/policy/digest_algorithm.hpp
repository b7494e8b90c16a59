// Which file-digest algorithm a new runtime policy uses (upstream keylime-policy create runtime):
// guessed from digest lengths of each input, then chosen by priority
// --algo > base policy > allowlist > IMA measurement list, refusing mixed or unknown algorithms.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/attest/policy/runtime_policy.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {

inline constexpr std::string_view kInvalidAlgorithm = "invalid";
// A 64-hex digest could be SHA-256 or SM3: ambiguous until another source decides.
inline constexpr std::string_view kSha256OrSm3 = "sha256_or_sm3_256";

// The Keylime names, in upstream's enumeration order (the order length guessing tries them).
const std::vector<std::string>& hash_algorithm_names();
bool is_recognized_algorithm(std::string_view name);
std::size_t hex_size_of(std::string_view name);  // 0 if unknown

// First algorithm whose hex length equals hex.size(), else "invalid".
std::string algorithm_from_hex(std::string_view hex);
// From the first digest of the first entry; "invalid" for an empty map; sha256 reported as
// sha256_or_sm3_256 when `ambiguous_sha256` (base policy and allowlist inputs).
std::string algorithm_from_digest_map(const kl::policy::DigestMap& map, bool ambiguous_sha256);

// (guessed algorithm or "" when the source is not used, source name as upstream logs it).
using AlgorithmSource = std::pair<std::string, std::string>;
// nullopt: abort (messages already logged). "" when no source set one (caller uses sha256).
std::optional<std::string> choose_algorithm(const std::vector<AlgorithmSource>& sources, const ToolLog& log);

}  // namespace kl::tools
