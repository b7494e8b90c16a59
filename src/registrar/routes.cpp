#include "registrar/routes.hpp"

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/service/http/json_response.hpp"
#include "registrar/agents_handler.hpp"
#include "registrar/metrics_handler.hpp"
#include "registrar/version_handler.hpp"

namespace kl::registrar {

// clang-format off
const std::vector<Route>& route_table() {
  static const std::vector<Route> routes{
  //  method    scope                 pattern                        handler              plain  admin  auth action
    {"GET",    Scope::unversioned, "/version",                    handle_version,      true,  false, "read_version"},
    {"GET",    Scope::v3,          "/",                           handle_version_root, true,  false, "read_version"},
    {"GET",    Scope::v2_and_v3,   "/agents",                     handle_list,         false, true,  "list_registrations"},
    {"GET",    Scope::v2_and_v3,   "/agents/:agent_id",           handle_show,         false, true,  "read_registration"},
    {"DELETE", Scope::v2_and_v3,   "/agents/:agent_id",           handle_delete,       false, true,  "delete_registration"},
    {"POST",   Scope::v2_and_v3,   "/agents",                     handle_register,     true,  false, "register_agent"},
    {"POST",   Scope::v2_and_v3,   "/agents/:agent_id/activate",  handle_activate,     true,  false, "activate_agent"},
    // v2 compatibility routes (the Rust agent registers with POST and activates with PUT on /agents/:id)
    {"POST",   Scope::v2,          "/agents/:agent_id",           handle_register,     true,  false, "register_agent"},
    {"PUT",    Scope::v2,          "/agents/:agent_id/activate",  handle_activate,     true,  false, "activate_agent"},
    {"PUT",    Scope::v2,          "/agents/:agent_id",           handle_activate,     true,  false, "activate_agent"},
    // Prometheus metrics (our extension): admin, like the other non-agent routes
    {"GET",    Scope::unversioned, "/metrics",                    handle_metrics,      false, true,  "read_metrics"},
  };
  return routes;
}
// clang-format on

namespace {

bool path_matches(const Route& r, const std::vector<std::string_view>& segs, RouteParams& params) {
  params = {};
  auto m = api::match_path(r.scope, r.pattern, segs);
  if (!m) return false;
  params.major_version = m->major_version;
  if (auto it = m->captures.find(":agent_id"); it != m->captures.end()) {
    params.agent_id = it->second;
    params.has_agent_id = true;
  }
  return true;
}

// Requests that reached a route, by action and status (keylime_http_requests_total); registrations and
// activations are the register_agent / activate_agent answers with 200.
http::Response counted(ServiceContext& ctx, const Route& r, http::Response resp) {
  if (ctx.metrics) ctx.metrics->requests.inc({r.auth_action, std::to_string(resp.status)});
  return resp;
}

}  // namespace

http::Response dispatch(ServiceContext& ctx, const http::Request& req) {
  if (!api::known_http_method(req.method)) return http::empty_status(501, "Not Implemented");
  const auto segs = api::split_path(req.path);   // a trailing "/" is tolerated (§0.3)

  const Route* match = nullptr;
  bool path_known = false;
  RouteParams params;
  for (const Route& r : route_table()) {
    RouteParams p;
    if (!path_matches(r, segs, p)) continue;
    path_known = true;
    if (req.method == r.method) {
      match = &r;
      params = std::move(p);
      break;
    }
  }
  if (!match) return path_known ? http::empty_status(405, "Method Not Allowed") : http::empty_status(404, "Not Found");
  if (!req.tls && !match->plain_http_ok) return http::empty_status(400, "Bad Request");

  // An Authorization header means push-model bearer-token authentication; the registrar issues no tokens,
  // so it can never be valid here (and it must not fall back to the mTLS identity).
  if (const std::string* auth = req.header("authorization"); auth && !auth->empty()) {
    if (auth->rfind("Bearer ", 0) != 0) return api::jsonapi_error(401, "Unauthorized", "Invalid Authorization header format");
    return api::jsonapi_error(401, "Unauthorized", "Invalid authentication token");
  }
  if (match->admin && !(req.tls && req.peer && req.peer->verified))
    return counted(ctx, *match, api::jsonapi_error(403, "Forbidden",
                         std::string("Action ") + match->auth_action + " requires admin authentication (mTLS certificate)"));
  return counted(ctx, *match, match->handler(ctx, req, params));
}

}  // namespace kl::registrar
