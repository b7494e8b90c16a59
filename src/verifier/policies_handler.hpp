// Runtime-policy (/v2.x/allowlists) and measured-boot-policy (/v2.x/mbpolicies) storage (wire-contract §3.8).
// Updates and deletions are announced to the scheduler (AgentScheduler::policy_changed) for the poller's policy cache.
#pragma once
#include "common/service/http/message.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

http::Response handle_list_runtime(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_show_runtime(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_create_runtime(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_update_runtime(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_delete_runtime(ServiceContext&, const http::Request&, const RouteParams&);

http::Response handle_list_mb(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_show_mb(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_create_mb(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_update_mb(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_delete_mb(ServiceContext&, const http::Request&, const RouteParams&);

// Upstream's RuntimePolicyGenerator.EmptyAllowList: has_runtime_policy = generator > this.
inline constexpr int kEmptyAllowListGenerator = 1;

}  // namespace kl::verifier

#include <optional>
#include <string>
#include <variant>

#include "common/service/storage/verifier_store.hpp"

namespace kl::verifier {

struct PolicyError {
  int code = 400;
  std::string message;
};

// A runtime policy as uploaded (base64 of the policy JSON text, optional base64 PEM key for DSSE), checked with
// kl::policy::accept_runtime_policy; the row to store under `name`.
std::variant<storage::RuntimePolicy, PolicyError> runtime_policy_from_upload(
    const std::string& name, const std::string& policy_b64, const std::optional<std::string>& key_b64,
    const std::optional<std::string>& tpm_policy, const VerifierSettings& settings);

// The empty default policy an agent gets when the tenant sends neither a policy nor a name.
storage::RuntimePolicy empty_runtime_policy(const std::string& name);

// A measured-boot policy must be JSON text (or absent); returns the error text otherwise.
std::optional<std::string> check_mb_policy_text(const std::string& text);

}  // namespace kl::verifier
