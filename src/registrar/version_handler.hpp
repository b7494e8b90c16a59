// GET /version and GET /v3[.0]/ (wire-contract §1.2).
#pragma once
#include "common/service/http/message.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

// The API versions this registrar speaks, as upstream HEAD lists them; current = "2.6".
const std::vector<std::string>& supported_api_versions();
const std::string& current_api_version();

http::Response handle_version(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_version_root(ServiceContext& ctx, const http::Request& req, const RouteParams& params);

}  // namespace kl::registrar
