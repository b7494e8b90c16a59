// The agent's side of the registrar protocol (wire-contract §2.3-§2.5): registration body, auth_tag,
// and the POST/PUT exchange.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/agent_identity.hpp"
#include "common/service/http/client.hpp"

namespace kl::testing {

struct RegisterOptions {
  std::string agent_id;
  std::string contact_ip = "127.0.0.1";
  int contact_port = 9002;
  std::string mtls_cert = "disabled";   // PEM or "disabled"
  enum class Style {
    rust,        // rust-keylime: Content-Type application/json; aik_tpm, ek_tpm (base64 TPM2B_PUBLIC), ekcert as
                 // PEM (omitted without a cert), iak_cert/idevid_cert null, ip, mtls_cert, port
    python_6_7   // upstream Python agent 6.7.0 (API 2.1): no Content-Type; ekcert base64(DER) and NO ek_tpm
  } style = Style::rust;
  std::string api_version = "2.6";
  // EK-certificate surrogate sent instead of the EK certificate: standard base64 of these bytes in `ekcert` (as the
  // SVSM-vTPM PoC sends its SEV-SNP report, or an Azure HCL report), with ek_tpm always sent beside it.
  std::optional<kl::Bytes> ekcert_surrogate;
  // Azure HCL report (NV 0x01400001) in the optional `azure_hcl_report` field, standard base64.
  std::optional<kl::Bytes> azure_hcl_report;
};

nlohmann::json registration_body(const AgentIdentity& id, const RegisterOptions& opts);

// hex(HMAC-SHA384(key = base64(credential) as ASCII, msg = agent_id)) — 96 lowercase hex chars.
std::string auth_tag(kl::ByteView credential, const std::string& agent_id);

struct RegistrationOutcome {
  int register_status = 0;
  nlohmann::json register_reply;   // parsed body (null if empty / not JSON)
  int activate_status = 0;         // 0 when activation was not attempted
  nlohmann::json activate_reply;
  std::string error;               // why the exchange stopped early (empty on success)
  bool ok() const { return register_status == 200 && activate_status == 200; }
};

// POST /v{ver}/agents/{id} with registration_body, decode results.blob, activate_credential,
// PUT /v{ver}/agents/{id} {"auth_tag": ...}. Transport failures propagate (std::runtime_error).
RegistrationOutcome register_and_activate(kl::http::Client& registrar, AgentIdentity& id,
                                          const RegisterOptions& opts);

// The outcome as one JSON object (what kl_test_agent prints).
nlohmann::json to_json(const RegistrationOutcome& outcome);

}  // namespace kl::testing
