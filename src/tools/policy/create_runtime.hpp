// `keylime-policy create runtime`: builds a runtime policy (format v1, generator 3) from a base
// policy, a flat allowlist, an IMA measurement list and/or a filesystem tree, with an exclude list,
// keyring / ima-buf entries and IMA signature verification keys, as upstream's create_runtime_policy.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/attest/policy/runtime_policy.hpp"
#include "tools/policy/arg_parser.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {

inline constexpr const char* kImaMeasurementList = "/sys/kernel/security/ima/ascii_runtime_measurements";

ArgParser create_runtime_parser();
// Returns the exit status (0 ok, 1 failed, 2 usage error).
int run_create_runtime(const std::vector<std::string>& args);

// Pieces reused by the command (exposed for tests).
// Flat allowlist "<digest> <path>": lines stripped, split on the first whitespace run, spaces in
// paths replaced by '_', lines without two fields skipped.
void add_flat_allowlist(std::string_view text, kl::policy::DigestMap& digests);
// Exclude list lines (stripped, blank ones skipped) appended to `excludes`; each must be a valid
// Python regex. nullopt on success, else the message upstream logs for the first bad line.
std::optional<std::string> add_exclude_list(std::string_view text, std::vector<std::string>& excludes);
// A base policy (any JSON object) reduced to the fields the current format supports; throws
// std::invalid_argument with the reason when the result is not a valid runtime policy.
kl::policy::RuntimePolicy base_policy_from_json(const nlohmann::json& base);
// The policy's digests as a legacy allowlist ("<digest>  <path>" lines, boot_aggregate first).
std::string legacy_allowlist_text(const kl::policy::DigestMap& digests);

}  // namespace kl::tools
