// GET /version and GET /v3[.0]/ (wire-contract §1.2).
#pragma once
#include "common/service/api/api_versions.hpp"
#include "common/service/http/message.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

using api::current_api_version;
using api::supported_api_versions;

http::Response handle_version(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_version_root(ServiceContext& ctx, const http::Request& req, const RouteParams& params);

}  // namespace kl::registrar
