// Reference-state generation from a parsed boot log, in upstream's format (keylime-policy create
// measured-boot / create_mb_refstate; verification.md §5.4 "Generation").
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kl::mb {

struct RefstateOptions {
  // -i: accept a log without Secure Boot (then has_secureboot is false and vmlinuz_plain_sha256 is used).
  bool allow_no_secureboot = false;
};

// Throws std::invalid_argument when the log cannot yield a reference state: no events, or Secure Boot disabled
// (or undeterminable) without allow_no_secureboot. As upstream, an unexpected number of boot applications
// (Secure Boot: 3 or 4, else 2, FvVol/FvFile images not counted) leaves "kernels" out of the result, which
// the example policy then rejects.
nlohmann::json create_refstate(const nlohmann::json& parsed_log, const RefstateOptions& options = {});

// Python's re.escape (3.7+): backslash before each of ()[]{}?*+-|^$\.&~# and whitespace \t\n\r\v\f.
std::string python_re_escape(std::string_view text);

}  // namespace kl::mb
