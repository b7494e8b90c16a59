// The verifier's route table and the dispatch rules around it (wire-contract §0.2, §0.3, §3).
#pragma once
#include <vector>

#include "common/service/api/route_match.hpp"
#include "common/service/http/message.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

using RouteHandler = http::Response (*)(ServiceContext&, const http::Request&, const RouteParams&);

using api::Scope;

struct Route {
  const char* method;
  Scope scope;
  const char* pattern;      // below the version prefix; ":agent_id", ":name", ":action" are parameters
  RouteHandler handler;
  bool admin;               // needs a verified mTLS client certificate and no Authorization header
  const char* auth_action;  // action name used in the 403 detail text
};

const std::vector<Route>& route_table();

// 404/405/501 with empty bodies, 401/403 JSON:API errors, then the handler. Exceptions escape to the caller.
http::Response dispatch(ServiceContext& ctx, const http::Request& req);

// Query string "a=1&b&c=x%20y" -> decoded pairs; a key without '=' maps to "".
std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query);

}  // namespace kl::verifier
