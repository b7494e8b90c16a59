// The registrar's route table and the dispatch rules around it (wire-contract §0.2, §0.3, §2.2).
#pragma once
#include <string>
#include <vector>

#include "common/service/api/route_match.hpp"
#include "common/service/http/message.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

using RouteHandler = http::Response (*)(ServiceContext&, const http::Request&, const RouteParams&);

using api::Scope;

struct Route {
  const char* method;
  Scope scope;
  const char* pattern;      // below the version prefix, e.g. "/agents/:agent_id"
  RouteHandler handler;
  bool plain_http_ok;       // served on the plain `port` listener too
  bool admin;               // needs a verified mTLS client certificate and no Authorization header
  const char* auth_action;  // upstream's action name, used in the 403 detail text
};

const std::vector<Route>& route_table();

// Route + framework errors: 404/405/501 and 400-on-plain-HTTP with empty bodies, 401/403 JSON:API
// errors for authentication/authorization, then the handler. Exceptions escape to the caller.
http::Response dispatch(ServiceContext& ctx, const http::Request& req);

}  // namespace kl::registrar
