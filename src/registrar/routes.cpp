#include "registrar/routes.hpp"

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/service/http/json_response.hpp"
#include "registrar/agents_handler.hpp"
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
  };
  return routes;
}
// clang-format on

namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) out.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// "v2", "v2.0".."v2.6" -> 2; "v3", "v3.0" -> 3; anything else -> 0 (no route: 404, §0.3).
int version_of(std::string_view seg) {
  static const std::vector<std::string_view> v2{"v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6"};
  static const std::vector<std::string_view> v3{"v3", "v3.0"};
  for (auto s : v2)
    if (seg == s) return 2;
  for (auto s : v3)
    if (seg == s) return 3;
  return 0;
}

bool path_matches(const Route& r, const std::vector<std::string_view>& segs, RouteParams& params) {
  size_t first = 0;
  params = {};
  if (r.scope != Scope::unversioned) {
    if (segs.empty()) return false;
    const int v = version_of(segs[0]);
    const bool ok = (v == 2 && (r.scope == Scope::v2 || r.scope == Scope::v2_and_v3)) ||
                    (v == 3 && (r.scope == Scope::v3 || r.scope == Scope::v2_and_v3));
    if (!ok) return false;
    params.major_version = v;
    first = 1;
  }
  const auto pat = split(r.pattern);
  if (segs.size() - first != pat.size()) return false;
  for (size_t i = 0; i < pat.size(); ++i) {
    const std::string_view seg = segs[first + i];
    if (pat[i] == ":agent_id") {
      params.agent_id = std::string(seg);
      params.has_agent_id = true;
    } else if (pat[i] != seg) {
      return false;
    }
  }
  return true;
}

bool known_method(const std::string& m) {
  for (const char* k : {"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"})
    if (m == k) return true;
  return false;
}

http::Response jsonapi_error(int status, const char* title, const std::string& detail) {
  nlohmann::json body = {{"errors", {{{"status", std::to_string(status)}, {"title", title}, {"detail", detail}}}}};
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

http::Response dispatch(ServiceContext& ctx, const http::Request& req) {
  if (!known_method(req.method)) return http::empty_status(501, "Not Implemented");
  const auto segs = split(req.path);   // a trailing "/" is tolerated (§0.3)

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
    if (auth->rfind("Bearer ", 0) != 0) return jsonapi_error(401, "Unauthorized", "Invalid Authorization header format");
    return jsonapi_error(401, "Unauthorized", "Invalid authentication token");
  }
  if (match->admin && !(req.tls && req.peer && req.peer->verified))
    return jsonapi_error(403, "Forbidden",
                         std::string("Action ") + match->auth_action + " requires admin authentication (mTLS certificate)");
  return match->handler(ctx, req, params);
}

}  // namespace kl::registrar
