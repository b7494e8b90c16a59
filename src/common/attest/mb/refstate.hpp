// Reference-state generation from a parsed boot log, in upstream's format (keylime-policy create
// measured-boot / create_mb_refstate; verification.md §5.4 "Generation").
#pragma once
#include <nlohmann/json.hpp>

namespace kl::mb {

struct RefstateOptions {
  // -i: accept a log without Secure Boot (then has_secureboot is false and vmlinuz_plain_sha256 is used).
  bool allow_no_secureboot = false;
};

// Throws std::invalid_argument with a message when the log cannot yield a reference state (no events, no
// SecureBoot and not allowed, unexpected number of boot applications, missing S-CRTM).
nlohmann::json create_refstate(const nlohmann::json& parsed_log, const RefstateOptions& options = {});

}  // namespace kl::mb
