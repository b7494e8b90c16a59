// The optional plain-HTTP metrics listener ([registrar|verifier] metrics_port): serves GET /metrics and
// nothing else (404), so scrapers without a client certificate never reach the tenant/admin API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kl::http {
class Server;
}

namespace kl::metrics {

class MetricsListener {
 public:
  // Binds address:port (0: an ephemeral port) and starts one server thread; throws std::runtime_error
  // if it cannot bind. `render` produces the exposition text for each scrape.
  MetricsListener(const std::string& address, std::uint16_t port, std::function<std::string()> render);
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  std::unique_ptr<http::Server> server_;
  std::uint16_t port_ = 0;
};

}  // namespace kl::metrics
