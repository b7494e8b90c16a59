// Revocation notifications (wire-contract §6): the message, its RSA-PSS signature, the agents' and webhook's body.
#pragma once
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "common/attest/quote/failure.hpp"
#include "common/service/storage/verifier_store.hpp"

namespace kl::verifier {

// The inner message as upstream serialises it (json.dumps: ", " / ": " separators) in upstream's key order:
// type, ip, agent_id, port, tpm_policy, meta_data, event_time (asctime), then event_id, severity_label, context
// when `event` is given. tpm_policy / meta_data are the tenant's JSON strings.
std::string revocation_msg(const storage::VerifierAgent& agent, std::string_view type, const Event* event,
                           std::time_t now);

// base64 RSA-PSS(SHA-256, MGF1-SHA-256, maximum salt) over `msg` with the PEM private key; "" when the key is
// empty. Throws std::runtime_error for a key that cannot be used.
std::string sign_revocation(std::string_view msg, const std::string& revocation_key_pem);

// {"msg": <msg>, "signature": <sig>} as sent to agents and to the webhook.
std::string revocation_body(const std::string& msg, const std::string& signature);

// "Mon Jun  3 10:00:00 2024" (C asctime without the newline), UTC.
std::string asctime_utc(std::time_t t);

}  // namespace kl::verifier
