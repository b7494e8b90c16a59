#include "verifier/registrar_client.hpp"

#include <nlohmann/json.hpp>

namespace kl::verifier {

RegistrarLookup parse_registrar_reply(int status, const std::string& body) {
  RegistrarLookup out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const std::exception&) {
    j = nullptr;
  }
  const std::string status_text = j.is_object() && j.contains("status") && j["status"].is_string()
                                      ? j["status"].get<std::string>()
                                      : std::string{};
  if (status == 404) {
    // Both "not found" and "has not been activated" are 404 at the registrar (§2.6).
    out.status = RegistrarLookup::Status::not_found;
    out.detail = status_text.empty() ? "Not Found" : status_text;
    return out;
  }
  if (status != 200 || !j.is_object() || !j.contains("results") || !j["results"].is_object()) {
    out.status = RegistrarLookup::Status::bad_reply;
    out.detail = "registrar answered " + std::to_string(status) + (status_text.empty() ? "" : " " + status_text);
    return out;
  }
  const auto& r = j["results"];
  if (!r.contains("aik_tpm") || !r["aik_tpm"].is_string() || r["aik_tpm"].get<std::string>().empty()) {
    out.status = RegistrarLookup::Status::bad_reply;
    out.detail = "registrar reply has no aik_tpm";
    return out;
  }
  out.status = RegistrarLookup::Status::ok;
  out.info.aik_tpm = r["aik_tpm"].get<std::string>();
  if (r.contains("mtls_cert") && r["mtls_cert"].is_string()) out.info.mtls_cert = r["mtls_cert"].get<std::string>();
  if (r.contains("ip") && r["ip"].is_string()) out.info.ip = r["ip"].get<std::string>();
  if (r.contains("port") && r["port"].is_number_integer()) out.info.port = r["port"].get<int>();
  if (r.contains("port") && r["port"].is_string()) {
    try {
      out.info.port = std::stoi(r["port"].get<std::string>());
    } catch (const std::exception&) {
    }
  }
  if (r.contains("regcount") && r["regcount"].is_number_integer()) out.info.regcount = r["regcount"].get<int>();
  return out;
}

RegistrarLookup lookup_agent_at_registrar(const RegistrarClientOptions& opts, const std::string& agent_id) {
  try {
    http::ClientOptions co;
    co.tls = opts.tls;
    co.timeout = opts.timeout;
    http::Client client(opts.host, opts.port, co);
    const auto resp = client.request("GET", "/v" + opts.api_version + "/agents/" + agent_id);
    return parse_registrar_reply(resp.status, resp.body);
  } catch (const std::exception& e) {
    RegistrarLookup out;
    out.status = RegistrarLookup::Status::unreachable;
    out.detail = e.what();
    return out;
  }
}

}  // namespace kl::verifier
