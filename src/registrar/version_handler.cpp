#include "registrar/version_handler.hpp"

#include "common/service/http/json_response.hpp"

namespace kl::registrar {

const std::vector<std::string>& supported_api_versions() {
  // Upstream HEAD's list (keylime/api_version.py). The tenant drops 3.x and negotiates the highest 2.x;
  // the Rust agent uses current_version when it supports it.
  static const std::vector<std::string> v{"1.0", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "3.0"};
  return v;
}

const std::string& current_api_version() {
  static const std::string v = "2.6";
  return v;
}

http::Response handle_version(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"current_version", current_api_version()},
                                   {"supported_versions", supported_api_versions()}});
}

http::Response handle_version_root(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200);
}

}  // namespace kl::registrar
