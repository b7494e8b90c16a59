// The /agents resource of the verifier (wire-contract §3.2-§3.6).
#pragma once
#include <nlohmann/json.hpp>

#include "common/service/http/message.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

http::Response handle_add_agent(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_show_agent(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_list_agents(ServiceContext&, const http::Request&, const RouteParams&);
http::Response handle_delete_agent(ServiceContext&, const http::Request&, const RouteParams&);
// PUT /agents/:id/reactivate | /stop; anything else -> 400 "uri not supported".
http::Response handle_agent_put(ServiceContext&, const http::Request&, const RouteParams&);

// The §3.3 object for one stored agent.
nlohmann::json render_agent_status(ServiceContext& ctx, const storage::VerifierAgent& agent);

// JSON-typed column helpers (the DB stores JSON text, spec §8.2).
std::string encode_json_string_column(const std::string& text);              // "abc" -> "\"abc\""
std::string decode_json_string_column(const std::optional<std::string>& column);  // inverse; "" for NULL
nlohmann::json decode_json_column(const std::optional<std::string>& column);  // null for NULL/unparsable

}  // namespace kl::verifier
