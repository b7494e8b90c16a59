// The verifier's view of the registrar (GET /v{ver}/agents/{id} over mTLS with the verifier's client certificate,
// wire-contract §2.6): the agent's AK and mTLS certificate, and whether it is registered and active.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/service/http/client.hpp"

namespace kl::verifier {

struct RegistrarAgentInfo {
  std::string aik_tpm;                  // base64 TPM2B_PUBLIC
  std::optional<std::string> mtls_cert; // PEM, "disabled" or absent
  std::optional<std::string> ip;
  std::optional<int> port;
  int regcount = 0;
};

struct RegistrarLookup {
  enum class Status { ok, not_found /* unknown or not activated */, unreachable, bad_reply };
  Status status = Status::unreachable;
  RegistrarAgentInfo info;   // when ok
  std::string detail;        // registrar's status text or the transport error
};

// Injected into the tenant API so tests can run without a registrar.
using RegistrarLookupFn = std::function<RegistrarLookup(const std::string& agent_id)>;

struct RegistrarClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8891;
  http::TlsClientConfig tls;   // verifier client cert/key + trusted_server_ca
  std::chrono::milliseconds timeout{60000};
  std::string api_version = "2.6";
};

// One synchronous lookup (own connection; called from tenant-API threads, which may block).
RegistrarLookup lookup_agent_at_registrar(const RegistrarClientOptions& opts, const std::string& agent_id);

// Parses the registrar's reply (status + body); exposed for tests.
RegistrarLookup parse_registrar_reply(int status, const std::string& body);

}  // namespace kl::verifier
