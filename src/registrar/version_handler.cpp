#include "registrar/version_handler.hpp"

#include "common/service/http/json_response.hpp"

namespace kl::registrar {

http::Response handle_version(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"current_version", current_api_version()},
                                   {"supported_versions", supported_api_versions()}});
}

http::Response handle_version_root(ServiceContext&, const http::Request&, const RouteParams&) {
  return http::json_envelope(200);
}

}  // namespace kl::registrar
