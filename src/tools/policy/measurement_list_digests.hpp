// What keylime-policy takes from an ASCII IMA measurement list: the boot_aggregate's algorithm,
// file digests of ima-ng/ima-sig lines, and (with -k / -b) keyring and ima-buf digests of
// ima-buf lines. Lines are split on single spaces, as upstream does; lines that do not fit are skipped.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/attest/policy/runtime_policy.hpp"

namespace kl::tools {

// (algorithm, digest) of a boot_aggregate line of template ima, ima-ng or ima-sig;
// ("invalid", "") for anything else (unknown algorithm, wrong digest length, other path).
std::pair<std::string, std::string> boot_aggregate_parse(std::string_view line);
// Of the first line of `list_text`.
std::pair<std::string, std::string> boot_aggregate_of_list(std::string_view list_text);

// path -> digest (the part after "<alg>:") of every ima-ng / ima-sig line with >= 5 fields.
void add_measurement_list_digests(std::string_view list_text, kl::policy::DigestMap& digests);

// ima-buf lines (exactly 6 fields): a buffer that is a DER/PEM X.509 certificate goes to
// `keyrings` (when get_keyrings and its name is not ignored), any other to `ima_buf` (when get_ima_buf).
void add_ima_buf_digests(std::string_view list_text, const std::vector<std::string>& ignored_keyrings,
                         bool get_keyrings, kl::policy::DigestMap& keyrings, bool get_ima_buf,
                         kl::policy::DigestMap& ima_buf);

// Python str.split(" ").
std::vector<std::string_view> split_on_space(std::string_view line);

}  // namespace kl::tools
