// Verifier-side acceptance of a runtime policy at upload (`POST /agents`, `POST /allowlists`,
// verification.md §4.3): JSON check, DSSE signature rules, schema, exclude regexes. A rejected
// policy is never stored; the error carries the HTTP status and upstream's message.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/attest/policy/runtime_policy.hpp"

namespace kl::policy {

struct PolicyUploadError {
  int code = 400;
  std::string message;
};

struct AcceptedPolicy {
  std::string stored_text;                 // the submitted text (an envelope is stored as such)
  RuntimePolicy policy;                    // the payload (for DSSE) as a model
  std::string checksum;                    // SHA-256 hex of the submitted text
  std::int64_t generator = 0;              // meta.generator (0 when absent)
};

struct UploadOptions {
  bool require_signatures = false;          // [verifier] require_allow_list_signatures
  std::optional<std::string> key_pem;       // runtime_policy_key (already base64-decoded PEM)
};

// Order as upstream: not JSON -> 400 "Runtime policy is not valid JSON!"; require_signatures and
// no key -> 401; require_signatures and not DSSE -> 400 "Runtime policy is not signed!"; bad DSSE
// signature -> 401 "Runtime policy failed DSSE signature verification!"; schema -> 400
// "Runtime policy is malformatted: <reason>";
// bad exclude regex -> 400 "Invalid regex: ... Exclude list regex is misformatted. ...".
// Deliberate difference: a DSSE policy submitted *with* a key is verified even when signatures are
// not required (upstream ignores the key then); a bad signature is never accepted.
std::variant<AcceptedPolicy, PolicyUploadError> accept_runtime_policy(std::string_view text,
                                                                    const UploadOptions& options);

// The policy used during attestation: the DSSE payload when the stored text is an envelope.
// Throws kl::ParseError for text that is not JSON.
nlohmann::json deserialize_runtime_policy(std::string_view stored_text);

}  // namespace kl::policy
