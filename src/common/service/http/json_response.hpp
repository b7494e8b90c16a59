// Response builders shared by the registrar and verifier route handlers.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "common/service/http/message.hpp"

namespace kl::http {

// {"code":code,"status":status or reason phrase,"results":results}; Content-Type application/json.
Response json_envelope(int code, const nlohmann::json& results = nlohmann::json::object(), std::string status = "");

// Framework-style error with an empty body and no Content-Type (wire-contract §0.2);
// `reason` replaces the standard reason phrase (e.g. "Malformed Request Parameter").
Response empty_status(int code, std::string reason = "");

}  // namespace kl::http
