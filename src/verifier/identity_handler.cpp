#include "verifier/identity_handler.hpp"

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/json_response.hpp"
#include "verifier/routes.hpp"

namespace kl::verifier {

http::Response handle_verify_identity(ServiceContext& ctx, const http::Request& req, const RouteParams&) {
  std::map<std::string, std::string> q;
  for (auto& [k, v] : parse_query(req.query)) q.emplace(k, v);
  for (const char* name : {"agent_uuid", "quote", "nonce", "hash_alg"})
    if (!q.count(name)) return http::json_envelope(400, nlohmann::json::object(), std::string("missing query parameter '") + name + "'");
  const auto agent = ctx.store.find_agent(q["agent_uuid"]);
  if (!agent) return http::json_envelope(404, nlohmann::json::object(), "agent id not found");

  auto invalid = [](const std::string& reason) { return http::json_envelope(200, {{"valid", 0}, {"reason", reason}}); };
  try {
    const auto ak_bytes = base64_decode(agent->ak_tpm.value_or(""));
    if (!ak_bytes) return invalid("stored ak_tpm is not valid base64");
    const auto ak = tpm::public_key(tpm::parse_tpm2b_public(*ak_bytes));
    const auto parts = quote::parse_quote_string(q["quote"]);
    const auto check = quote::verify_quote(parts, q["nonce"], q["hash_alg"], ak.get());
    if (!check.ok()) return invalid(check.error);
  } catch (const ParseError& e) {
    return invalid(e.what());
  }
  return http::json_envelope(200, {{"valid", 1}});
}

}  // namespace kl::verifier
