// Legacy allowlist / excludelist formats and their conversion to a runtime policy
// (verification.md §4.2; upstream keylime/cmd/convert_runtime_policy.py).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/attest/policy/runtime_policy.hpp"

namespace kl::policy {

// Flat allowlist "<hash> <path>" (split on the first whitespace run, lines stripped, blank lines
// skipped, lines without two fields skipped); "%keyring:<name>" paths go to keyrings[name];
// repeated paths accumulate. Generator 3 (LegacyAllowList), meta.timestamp = `timestamp`.
RuntimePolicy convert_flat_allowlist(std::string_view text, std::string timestamp);

// Legacy JSON allowlist {"hashes": {...}, optional other policy keys} -> generator 3.
// Throws kl::ParseError when it has no "hashes" (or is already a runtime policy: has "digests").
RuntimePolicy convert_json_allowlist(const nlohmann::json& allowlist, std::string timestamp);

// Either of the above, chosen as upstream does (JSON first, flat format if it is not JSON).
RuntimePolicy convert_legacy_allowlist(std::string_view text, std::string timestamp);

// Exclude list: one regex per line, lines stripped, blank and '#' lines skipped; appended.
void append_exclude_list(std::string_view text, RuntimePolicy& policy);

// A policy with meta.version < 1 is rebuilt on the empty policy with generator 2
// (CompatibleAllowList) and the given timestamp; others are returned unchanged.
RuntimePolicy upgrade_runtime_policy(const nlohmann::json& old_policy, std::string timestamp);

// Python's str(datetime.datetime.now()) layout: "YYYY-MM-DD HH:MM:SS.ffffff" (local time).
std::string python_now_timestamp();

}  // namespace kl::policy
