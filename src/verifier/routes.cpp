#include "verifier/routes.hpp"

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/service/http/json_response.hpp"
#include "verifier/agents_handler.hpp"
#include "verifier/identity_handler.hpp"
#include "verifier/metrics_handler.hpp"
#include "verifier/policies_handler.hpp"
#include "verifier/version_handler.hpp"

namespace kl::verifier {

// clang-format off
const std::vector<Route>& route_table() {
  static const std::vector<Route> routes{
    // method   scope               pattern                        handler                   admin  action
    {"GET",    Scope::unversioned, "/",                           handle_root_redirect,     false, "server_info"},
    {"GET",    Scope::unversioned, "/version",                    handle_version,           false, "version"},
    {"GET",    Scope::unversioned, "/versions",                   handle_version,           false, "version"},
    {"GET",    Scope::v3,          "/",                           handle_v3_root,           false, "server_info"},
    {"GET",    Scope::v2,          "/",                           handle_v2_root,           false, "server_info"},
    {"GET",    Scope::v2,          "/agents",                     handle_list_agents,       true,  "list_agents"},
    {"GET",    Scope::v2,          "/agents/:agent_id",           handle_show_agent,        true,  "show_agent"},
    {"POST",   Scope::v2,          "/agents/:agent_id",           handle_add_agent,         true,  "create_agent"},
    {"DELETE", Scope::v2,          "/agents/:agent_id",           handle_delete_agent,      true,  "delete_agent"},
    {"PUT",    Scope::v2,          "/agents/:agent_id",           handle_agent_put,         true,  "update_agent"},
    {"PUT",    Scope::v2,          "/agents/:agent_id/:action",   handle_agent_put,         true,  "update_agent"},
    {"GET",    Scope::v2,          "/allowlists",                 handle_list_runtime,      true,  "list_runtime_policies"},
    {"GET",    Scope::v2,          "/allowlists/:name",           handle_show_runtime,      true,  "show_runtime_policy"},
    {"POST",   Scope::v2,          "/allowlists/:name",           handle_create_runtime,    true,  "create_runtime_policy"},
    {"PUT",    Scope::v2,          "/allowlists/:name",           handle_update_runtime,    true,  "update_runtime_policy"},
    {"DELETE", Scope::v2,          "/allowlists/:name",           handle_delete_runtime,    true,  "delete_runtime_policy"},
    {"GET",    Scope::v2,          "/mbpolicies",                 handle_list_mb,           true,  "list_mb_policies"},
    {"GET",    Scope::v2,          "/mbpolicies/:name",           handle_show_mb,           true,  "show_mb_policy"},
    {"POST",   Scope::v2,          "/mbpolicies/:name",           handle_create_mb,         true,  "create_mb_policy"},
    {"PUT",    Scope::v2,          "/mbpolicies/:name",           handle_update_mb,         true,  "update_mb_policy"},
    {"DELETE", Scope::v2,          "/mbpolicies/:name",           handle_delete_mb,         true,  "delete_mb_policy"},
    {"GET",    Scope::v2,          "/verify/identity",            handle_verify_identity,   false, "verify_identity"},
    // Prometheus metrics (our extension), admin (mTLS) like the tenant API
    {"GET",    Scope::unversioned, "/metrics",                    handle_metrics,           true,  "read_metrics"},
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
  params.version = m->version;
  for (const char* key : {":agent_id", ":name"})
    if (auto it = m->captures.find(key); it != m->captures.end()) params.id = it->second;
  if (auto it = m->captures.find(":action"); it != m->captures.end()) params.action = it->second;
  return true;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 &&
               hexval(s[i + 2]) >= 0) {
      out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string_view part(query.data() + pos, end - pos);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string_view::npos)
        out.emplace_back(url_decode(part), "");
      else
        out.emplace_back(url_decode(part.substr(0, eq)), url_decode(part.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

http::Response dispatch(ServiceContext& ctx, const http::Request& req) {
  if (!api::known_http_method(req.method)) return http::empty_status(501, "Not Implemented");
  const auto segs = api::split_path(req.path);

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
  // Requests that reached a route, by action and status (keylime_http_requests_total).
  auto counted = [&](http::Response resp) {
    if (ctx.metrics) ctx.metrics->requests.inc({match->auth_action, std::to_string(resp.status)});
    return resp;
  };
  // The tenant API is HTTPS-only (§3.1); a plain listener is only used by tests.
  if (!match->admin) return counted(match->handler(ctx, req, params));

  if (const std::string* auth = req.header("authorization"); auth && !auth->empty()) {
    if (auth->rfind("Bearer ", 0) != 0) return api::jsonapi_error(401, "Unauthorized", "Invalid Authorization header format");
    return api::jsonapi_error(401, "Unauthorized", "Invalid authentication token");
  }
  if (!(req.tls && req.peer && req.peer->verified))
    return counted(api::jsonapi_error(403, "Forbidden",
                         std::string("Action ") + match->auth_action + " requires admin authentication (mTLS certificate)"));
  return counted(match->handler(ctx, req, params));
}

}  // namespace kl::verifier
