// Synchronous HTTP/1.1 client (plain or TLS). Boost stays inside client.cpp.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kl::http {

struct TlsClientConfig {
  std::string cert_file, key_file, key_password;   // client certificate (empty = none)
  std::vector<std::string> ca_files;                // trusted server CAs
  std::vector<std::string> pinned_server_pems;      // extra trusted server certs (agent mTLS pinning, §5.2)
  bool verify_server = true;                        // no hostname checks (as upstream)
};

struct ClientOptions {
  std::optional<TlsClientConfig> tls;
  std::chrono::milliseconds timeout{60000};         // per request: connect + handshake + write + read
};

struct ClientResponse {
  int status = 0;
  std::string reason;
  std::string body;
  std::map<std::string, std::string> headers;       // names lower-cased
};

// Synchronous HTTP/1.1 client with one kept-alive connection, reconnecting when the peer closed it.
// Throws std::runtime_error on connect/TLS/timeout failure (message says which).
// Not thread-safe: one Client per thread (or guard it).
class Client {
 public:
  Client(std::string host, std::uint16_t port, ClientOptions opts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ClientResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& content_type = "application/json");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kl::http
