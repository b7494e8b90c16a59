#include "verifier/version_handler.hpp"

#include "common/service/http/json_response.hpp"

namespace kl::verifier {

http::Response handle_version(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"current_version", current_api_version()},
                                   {"supported_versions", supported_api_versions()}});
}

http::Response handle_root_redirect(ServiceContext&, const http::Request&, const RouteParams&) {
  http::Response r = http::empty_status(307);
  r.headers.emplace_back("Location", "/v3.0/");
  return r;
}

http::Response handle_v3_root(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200);
}

http::Response handle_v2_root(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(405, nlohmann::json::object(), "Not Implemented: Use /agents/ interface instead");
}

}  // namespace kl::verifier
