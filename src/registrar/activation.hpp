// Activation (PUT /v{ver}/agents/{id}[/activate], POST .../activate): the agent proves it could run
// TPM2_ActivateCredential by returning HMAC-SHA384(key = base64(credential), msg = agent_id), §2.5.
#pragma once
#include <string>
#include <string_view>

namespace kl::registrar {

// Lowercase hex HMAC-SHA384 keyed with the stored `key` column's text over the agent id.
std::string expected_auth_tag(std::string_view stored_key, std::string_view agent_id);

// Constant-time comparison of the received tag with the expected one (exact text, as upstream's
// hmac.compare_digest on the hex strings).
bool auth_tag_matches(std::string_view stored_key, std::string_view agent_id, std::string_view auth_tag);

}  // namespace kl::registrar
