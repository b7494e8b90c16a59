// The /agents resource of the registrar (wire-contract §2.3-§2.8).
#pragma once
#include <nlohmann/json.hpp>

#include "common/service/http/message.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/service_context.hpp"

namespace kl::registrar {

// Response header naming the reason of an EK/IAK/IDevID chain rejection (our extension; the status text
// stays upstream's "Could not register agent with invalid data").
inline constexpr const char* kErrorHeader = "X-Keylime-Error";

http::Response handle_register(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_activate(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_list(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_show(ServiceContext& ctx, const http::Request& req, const RouteParams& params);
http::Response handle_delete(ServiceContext& ctx, const http::Request& req, const RouteParams& params);

// GET rendering of a stored record (§2.6): exactly agent_id, ek_tpm, ekcert, aik_tpm, mtls_cert, ip,
// port, regcount (+ provider_keys when the legacy `virtual` flag is set); mtls_cert as PEM.
nlohmann::json render_agent(const storage::RegistrarAgent& agent);

// PEM text of a base64 DER certificate (64-character lines, as Python's cryptography writes it).
std::string pem_from_base64_der(const std::string& b64);

}  // namespace kl::registrar
