#include "common/service/http/json_response.hpp"

#include <utility>

namespace kl::http {

Response json_envelope(int code, const nlohmann::json& results, std::string status) {
  if (status.empty()) {
    // Keylime says "Success" for 200 rather than the HTTP phrase "OK" (wire-contract §0.1).
    status = code == 200 ? "Success" : reason_phrase(code);
  }
  // Written by hand to keep upstream's key order (code, status, results); nlohmann::json sorts keys.
  const auto& res = results.is_null() ? nlohmann::json::object() : results;
  // Invalid UTF-8 in a result string must not turn a reply into an exception.
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  std::string body = "{\"code\":" + std::to_string(code) + ",\"status\":" +
                     nlohmann::json(status).dump(-1, ' ', false, kReplace) + ",\"results\":" +
                     res.dump(-1, ' ', false, kReplace) + "}";
  Response r;
  r.status = code;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response empty_status(int code, std::string reason) {
  Response r;
  r.status = code;
  r.reason = std::move(reason);
  return r;
}

}  // namespace kl::http
