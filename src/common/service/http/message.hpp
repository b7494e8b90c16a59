// Plain request/response values exchanged with the HTTP layer. No Boost.Beast here:
// handlers and tests include only this header.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kl::http {

// What the TLS layer learnt about the client certificate, if any was presented.
struct PeerCertificate {
  bool verified = false;      // chains to the listener's trusted client CA
  std::string subject_cn;     // CN of the leaf (identity for authorization)
  std::string pem;            // leaf certificate as PEM
};

struct Request {
  std::string method;                       // "GET", "POST", ...
  std::string target;                       // raw request target, e.g. "/v2.1/agents/x?bulk"
  std::string path;                         // target without the query, percent-decoded
  std::string query;                        // raw query string, without '?'
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool tls = false;                         // arrived on a TLS listener
  std::optional<PeerCertificate> peer;      // set only on TLS listeners when a cert was sent
  std::string remote_address;

  const std::string* header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

struct Response {
  int status = 200;
  std::string reason;                       // empty: the standard reason phrase for `status`
  std::string content_type;                 // empty: no Content-Type header (and empty body)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Standard reason phrase ("Not Found") for a status code.
std::string reason_phrase(int status);

}  // namespace kl::http
