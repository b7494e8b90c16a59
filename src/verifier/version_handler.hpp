// GET /version, /versions, / and the version roots (wire-contract §1.2).
#pragma once
#include <string>
#include <vector>

#include "common/service/http/message.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

// Upstream HEAD's lists; current = "2.6". (Same as the registrar's: registrar/version_handler.hpp.)
const std::vector<std::string>& supported_api_versions();
const std::string& current_api_version();

http::Response handle_version(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_root_redirect(ServiceContext&, const http::Request&, const RouteParams&);   // 307 -> /v3.0/
http::Response handle_v3_root(ServiceContext&, const http::Request&, const RouteParams&);         // 200 {}
http::Response handle_v2_root(ServiceContext&, const http::Request&, const RouteParams&);         // 405

}  // namespace kl::verifier
