#include "common/service/http/json_response.hpp"

#include <utility>

namespace kl::http {

Response json_envelope(int code, const nlohmann::json& results, std::string status) {
  if (status.empty()) {
    // Keylime says "Success" for 200 rather than the HTTP phrase "OK" (wire-contract §0.1).
    status = code == 200 ? "Success" : reason_phrase(code);
  }
  nlohmann::json body = {{"code", code}, {"status", status},
                         {"results", results.is_null() ? nlohmann::json::object() : results}};
  Response r;
  r.status = code;
  r.content_type = "application/json";
  // Invalid UTF-8 in a result string must not turn a reply into an exception.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response empty_status(int code, std::string reason) {
  Response r;
  r.status = code;
  r.reason = std::move(reason);
  return r;
}

}  // namespace kl::http
