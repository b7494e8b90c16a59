// GET /version, /versions, / and the version roots (wire-contract §1.2).
#pragma once
#include <string>
#include <vector>

#include "common/service/api/api_versions.hpp"
#include "common/service/http/message.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

using api::current_api_version;
using api::supported_api_versions;

http::Response handle_version(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_root_redirect(ServiceContext&, const http::Request&, const RouteParams&);   // 307 -> /v3.0/
http::Response handle_v3_root(ServiceContext&, const http::Request&, const RouteParams&);         // 200 {}
http::Response handle_v2_root(ServiceContext&, const http::Request&, const RouteParams&);         // 405

}  // namespace kl::verifier
