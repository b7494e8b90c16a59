// HTTP/1.1 server (plain and TLS listeners) that hands every request to one Handler.
// Boost.Beast/Asio stay inside server.cpp: users see only Request/Response values.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/service/http/message.hpp"
#include "common/service/http/peer_limits.hpp"

namespace kl::http {

struct TlsServerConfig {
  std::string cert_file, key_file, key_password;
  std::vector<std::string> trusted_client_ca_files;   // empty = do not request client certs
  // Client certificates are requested but optional at the TLS level (as upstream: CERT_OPTIONAL); the result is
  // reported in Request::peer (verified or not) and routes decide. TLS 1.2 minimum.
  //
  // As with Python's CERT_OPTIONAL, a client certificate that is presented but does not chain to
  // trusted_client_ca_files makes the handshake fail (alert "unknown ca"); so a Request::peer that
  // is set always has verified == true. No client certificate at all is accepted (peer empty).
};

struct ListenerConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::optional<TlsServerConfig> tls;
};

struct ServerOptions {
  std::vector<ListenerConfig> listeners;
  std::size_t max_body_bytes = 104857600;   // larger -> 413 JSON envelope error, connection closed
  unsigned threads = 1;                     // io threads running handlers
  // Deadline for one request to arrive (TLS handshake, or headers + body from the moment the server starts
  // reading) and for an idle keep-alive connection: a slow or silent client (slowloris) is closed after it.
  std::chrono::seconds idle_timeout{60};
  // Per-peer-address connection cap and request rate (refused connections are closed at once, requests over
  // the rate get 429). Off by default here; keylime_registrar / keylime_verifier set them from ServerTuning.
  PeerLimitsConfig peer_limits;
};

using Handler = std::function<Response(const Request&)>;

class Server {
 public:
  Server(ServerOptions opts, Handler handler);
  ~Server();                                  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();                               // binds all listeners (throws std::runtime_error naming address:port on failure), runs threads
  std::vector<std::uint16_t> bound_ports() const;   // in listener order (port 0 -> ephemeral port chosen)
  void stop();                                // graceful: stop accepting, close connections, join threads
  // Stops accepting, lets requests already being handled finish and their responses go out (closing those
  // connections), for at most `grace`; then stop(). False if requests were still in flight at the deadline.
  bool shutdown(std::chrono::milliseconds grace);
  int in_flight() const;                      // requests being handled or answered now
  // Re-reads every TLS listener's certificate, key and client CAs from the same files (SIGHUP). New
  // connections use them; open ones keep theirs. Throws std::runtime_error (nothing changed) if a file is bad.
  void reload_tls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kl::http
