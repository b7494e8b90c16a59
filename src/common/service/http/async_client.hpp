// Asynchronous HTTP/1.1 client (plain or TLS) running on a kl::loop::EventLoop, used by the verifier poller
// to talk to thousands of agents without a thread per agent. Boost stays inside async_client.cpp.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/service/http/client.hpp"   // ClientResponse
#include "common/service/loop/event_loop.hpp"

namespace kl::http {

struct AsyncTarget {
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;
  // Agent's mtls_cert from the registrar: the server cert must equal it (or chain to the shared CA files in
  // AsyncClientOptions) — checked in a verify callback, so ONE SSL_CTX serves every agent. Empty: CA files only.
  std::string pinned_server_pem;
};

struct AsyncClientOptions {
  std::string client_cert_file, client_key_file, client_key_password;
  std::vector<std::string> ca_files;
  // Idle keep-alive connections kept in the pool; beyond it a connection is closed after its response.
  // Memory: an idle plain connection costs ~1 KB; an idle TLS one ~25-30 KB of OpenSSL state (the SSL object with
  // its cipher contexts, the session and the peer's parsed certificate; no record buffers while idle), so with
  // agent mTLS this bounds RSS. Beyond it connections close after their response and the next request does a
  // full handshake again: a CPU-for-memory trade, measured in docs/verifier_scale.md.
  std::size_t max_idle_connections = 20000;
  // Connections opened (connect + TLS handshake, ~1-2 ms of CPU each side with mTLS) at the same time; more wait
  // their turn, first come first served, within their request's timeout.
  std::size_t max_concurrent_opens = 128;
};

// Exactly one of response / error is meaningful: response set -> error empty; response empty -> error says why
// ("connect: ...", "tls handshake: ...", "timeout", ...).
using AsyncDone = std::function<void(std::optional<ClientResponse> response, std::string error)>;

// Keep-alive connections per (host, port, tls, pin) are reused. `done` is invoked on one of the loop's threads,
// exactly once, never inline from request(). Thread-safe: request() may be called from any thread.
// The destructor closes idle connections; in-flight requests complete with an error (their `done` still runs
// if the loop is running) — destroy the client before the loop.
class AsyncClient {
 public:
  AsyncClient(loop::EventLoop& loop, AsyncClientOptions opts);   // throws std::runtime_error on bad cert/key files
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // `path_and_query` e.g. "/v2.1/quotes/integrity?nonce=...". A non-empty body is sent as application/json.
  void request(const AsyncTarget& target, std::string method, std::string path_and_query, std::string body,
               std::chrono::milliseconds timeout, AsyncDone done);

  std::size_t idle_connections() const;          // pooled idle keep-alive connections (tests / metrics)
  std::size_t connections_opened() const;        // total TCP connections opened so far (keep-alive tests)

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kl::http
