#include "verifier/webhook_sender.hpp"

#include <mutex>

#include "verifier/verifier_config.hpp"   // retry_delay

namespace kl::verifier {

std::optional<WebhookEndpoint> parse_webhook_url(const std::string& url) {
  WebhookEndpoint e;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    e.target.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  e.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  e.target.port = e.target.tls ? 443 : 80;
  if (!hostport.empty() && hostport.front() == '[') {   // [v6]:port
    const auto close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    e.target.host = hostport.substr(1, close - 1);
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && hostport.front() != ':') return std::nullopt;
  } else {
    const auto colon = hostport.rfind(':');
    e.target.host = hostport.substr(0, colon);
    hostport = colon == std::string::npos ? "" : hostport.substr(colon);
  }
  if (!hostport.empty()) {
    try {
      std::size_t used = 0;
      const int port = std::stoi(hostport.substr(1), &used);
      if (used != hostport.size() - 1 || port <= 0 || port > 65535) return std::nullopt;
      e.target.port = static_cast<std::uint16_t>(port);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (e.target.host.empty()) return std::nullopt;
  return e;
}

struct WebhookSender::Delivery {
  WebhookEndpoint endpoint;
  std::string body;
  Outcome on_final;
  int attempts = 0;
};

// Callbacks hold this, never the sender: `stopped` (under `m`) tells them the loop and client may be gone.
struct WebhookSender::Shared {
  std::mutex m;
  bool stopped = false;
  loop::EventLoop& loop;
  http::AsyncClient& client;
  WebhookRetryPolicy policy;
  Shared(loop::EventLoop& l, http::AsyncClient& c, WebhookRetryPolicy p) : loop(l), client(c), policy(p) {}
};

WebhookSender::WebhookSender(loop::EventLoop& loop, http::AsyncClient& client, WebhookRetryPolicy policy)
    : shared_(std::make_shared<Shared>(loop, client, policy)) {}

WebhookSender::~WebhookSender() {
  std::lock_guard lk(shared_->m);
  shared_->stopped = true;
}

bool WebhookSender::send(const std::string& url, std::string body, Outcome on_final) {
  auto endpoint = parse_webhook_url(url);
  if (!endpoint) return false;
  auto d = std::make_shared<Delivery>();
  d->endpoint = std::move(*endpoint);
  d->body = std::move(body);
  d->on_final = std::move(on_final);
  attempt(shared_, std::move(d));
  return true;
}

void WebhookSender::attempt(const std::shared_ptr<Shared>& shared, std::shared_ptr<Delivery> d) {
  std::lock_guard lk(shared->m);
  if (shared->stopped) return;
  ++d->attempts;
  shared->client.request(
      d->endpoint.target, "POST", d->endpoint.path, d->body, shared->policy.timeout,
      [shared, d](std::optional<http::ClientResponse> r, std::string err) {
        if (r && (r->status == 200 || r->status == 202)) {
          if (d->on_final) d->on_final(true, d->attempts, "");
          return;
        }
        const std::string why = r ? "answered " + std::to_string(r->status) : err;
        if (d->attempts >= std::max(1, shared->policy.max_attempts)) {
          if (d->on_final) d->on_final(false, d->attempts, why);
          return;
        }
        const double delay = retry_delay(shared->policy.exponential_backoff, shared->policy.retry_interval, d->attempts - 1);
        std::lock_guard lk(shared->m);
        if (shared->stopped) return;
        shared->loop.schedule_after(std::chrono::milliseconds(static_cast<long long>(delay * 1000.0)),
                                    [shared, d] { attempt(shared, d); });
      });
}

}  // namespace kl::verifier
