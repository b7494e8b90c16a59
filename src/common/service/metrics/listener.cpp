#include "common/service/metrics/listener.hpp"

#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "common/service/metrics/exposition.hpp"

namespace kl::metrics {

MetricsListener::MetricsListener(const std::string& address, std::uint16_t port, std::function<std::string()> render) {
  http::ServerOptions opts;
  opts.listeners = {http::ListenerConfig{address, port, std::nullopt}};
  opts.max_body_bytes = 1024;  // scrapes have no body
  opts.threads = 1;
  server_ = std::make_unique<http::Server>(opts, [render = std::move(render)](const http::Request& r) {
    std::string path = r.path;
    if (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path != "/metrics") return http::empty_status(404);
    if (r.method != "GET" && r.method != "HEAD") return http::empty_status(405);
    http::Response resp;
    resp.content_type = kContentType;
    try {
      resp.body = render();
    } catch (const std::exception&) {
      return http::empty_status(500);
    }
    return resp;
  });
  server_->start();
  port_ = server_->bound_ports().at(0);
}

MetricsListener::~MetricsListener() {
  if (server_) server_->stop();
}

}  // namespace kl::metrics
