#include "agent/registration.hpp"

#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "support/cert_issue.hpp"

namespace kl::testing {
namespace {

nlohmann::json parse_or_null(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace

nlohmann::json registration_body(const AgentIdentity& id, const RegisterOptions& opts) {
  const auto cert = id.ek_certificate_der();
  nlohmann::json body = nlohmann::json::object();
  body["aik_tpm"] = kl::base64_encode(id.ak_tpm2b_public());
  body["mtls_cert"] = opts.mtls_cert;
  body["ip"] = opts.contact_ip;
  if (opts.style == RegisterOptions::Style::rust) {
    // rust-keylime: ek_tpm always (skipped only when empty), ekcert as PEM (leaf first) only when the TPM has one,
    // iak_cert / idevid_cert serialised as null without IAK/IDevID, port as a number.
    const kl::Bytes ek = id.ek_tpm2b_public();
    if (!ek.empty()) body["ek_tpm"] = kl::base64_encode(ek);
    if (cert) body["ekcert"] = der_to_pem(*cert);
    body["iak_cert"] = nullptr;
    body["idevid_cert"] = nullptr;
    body["port"] = opts.contact_port;
  } else {
    // Python agent 6.7.0: ekcert = base64(DER) (or null), ek_tpm only when there is no EK certificate,
    // port as the string it read from keylime.conf.
    if (cert) {
      body["ekcert"] = kl::base64_encode(*cert);
    } else {
      body["ekcert"] = nullptr;
      body["ek_tpm"] = kl::base64_encode(id.ek_tpm2b_public());
    }
    body["port"] = std::to_string(opts.contact_port);
  }
  if (opts.ekcert_surrogate) {
    // The PoC's registrar client: ekcert = base64 of the report read from NV, plus ek_tpm (TPM2B_PUBLIC).
    body["ekcert"] = kl::base64_encode(*opts.ekcert_surrogate);
    body["ek_tpm"] = kl::base64_encode(id.ek_tpm2b_public());
  }
  if (opts.azure_hcl_report) body["azure_hcl_report"] = kl::base64_encode(*opts.azure_hcl_report);
  return body;
}

std::string auth_tag(kl::ByteView credential, const std::string& agent_id) {
  const std::string mackey = kl::base64_encode(credential);
  return kl::hex_encode(kl::crypto::hmac(kl::crypto::HashAlg::sha384, kl::as_bytes(mackey), kl::as_bytes(agent_id)));
}

RegistrationOutcome register_and_activate(kl::http::Client& registrar, AgentIdentity& id,
                                          const RegisterOptions& opts) {
  RegistrationOutcome out;
  const bool rust = opts.style == RegisterOptions::Style::rust;
  // The Python agent posts json.dumps(...) through requests' data=, which sets no Content-Type.
  const std::string content_type = rust ? "application/json" : "";
  const std::string base = "/v" + opts.api_version + "/agents/" + opts.agent_id;

  auto reg = registrar.request("POST", base, registration_body(id, opts).dump(), {}, content_type);
  out.register_status = reg.status;
  out.register_reply = parse_or_null(reg.body);
  if (reg.status != 200) {
    out.error = "registration refused: " + std::to_string(reg.status) + " " + reg.reason;
    return out;
  }
  const auto* blob_text = out.register_reply.is_object() && out.register_reply.contains("results") &&
                                  out.register_reply["results"].is_object() &&
                                  out.register_reply["results"].contains("blob") &&
                                  out.register_reply["results"]["blob"].is_string()
                              ? out.register_reply["results"]["blob"].get_ptr<const std::string*>()
                              : nullptr;
  if (!blob_text) {
    out.error = "registration reply has no results.blob string";
    return out;
  }
  const auto blob = kl::base64_decode(*blob_text);
  if (!blob) {
    out.error = "results.blob is not valid base64";
    return out;
  }
  kl::Bytes credential;
  try {
    credential = id.activate_credential(*blob);
  } catch (const std::exception& e) {
    out.error = std::string("activate_credential failed: ") + e.what();
    return out;
  }

  // rust-keylime activates with PUT on the agent resource; the Python agent used the /activate sub-resource.
  const std::string target = rust ? base : base + "/activate";
  const nlohmann::json activate = {{"auth_tag", auth_tag(credential, opts.agent_id)}};
  auto act = registrar.request("PUT", target, activate.dump(), {}, content_type);
  out.activate_status = act.status;
  out.activate_reply = parse_or_null(act.body);
  if (act.status != 200) out.error = "activation refused: " + std::to_string(act.status) + " " + act.reason;
  return out;
}

nlohmann::json to_json(const RegistrationOutcome& o) {
  return {{"ok", o.ok()},
          {"register_status", o.register_status},
          {"register_reply", o.register_reply},
          {"activate_status", o.activate_status},
          {"activate_reply", o.activate_reply},
          {"error", o.error}};
}

}  // namespace kl::testing
