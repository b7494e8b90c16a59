// Revocation webhook delivery (wire-contract §6): POST of the revocation body to [revocations] webhook_url, retried
// in the background with the verifier's max_retries / retry_interval / exponential_backoff / request_timeout.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/service/http/async_client.hpp"
#include "common/service/loop/event_loop.hpp"

namespace kl::verifier {

// "http[s]://host[:port][/path]" -> target + path; nullopt for anything else.
struct WebhookEndpoint {
  http::AsyncTarget target;
  std::string path;
};
std::optional<WebhookEndpoint> parse_webhook_url(const std::string& url);

struct WebhookRetryPolicy {
  int max_attempts = 5;              // [verifier] max_retries: attempts in all, as upstream's loop
  double retry_interval = 2;
  bool exponential_backoff = true;
  std::chrono::milliseconds timeout{60000};
};

// Upstream retries only on a non-200/202 answer and gives up on the first connection error; here both are
// retried (a webhook that is briefly down must not lose a revocation). `on_final(delivered, attempts)` is
// called once per notification (logs, tests).
class WebhookSender {
 public:
  using Outcome = std::function<void(bool delivered, int attempts, const std::string& last_error)>;
  WebhookSender(loop::EventLoop& loop, http::AsyncClient& client, WebhookRetryPolicy policy);
  // Pending retries are dropped (their on_final is not called): a sender may go before the loop and client.
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;
  // Queues one notification; returns false (nothing sent) for an unusable URL.
  bool send(const std::string& url, std::string body, Outcome on_final = {});

 private:
  struct Delivery;
  struct Shared;   // outlives the sender while callbacks are pending
  static void attempt(const std::shared_ptr<Shared>& shared, std::shared_ptr<Delivery> d);
  std::shared_ptr<Shared> shared_;
};

}  // namespace kl::verifier
