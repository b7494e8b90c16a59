// Revocation webhook: URL parsing and retried delivery against a real HTTP server on 127.0.0.1.
#include <atomic>
#include <future>

#include <catch2/catch.hpp>

#include "common/service/http/server.hpp"
#include "verifier/webhook_sender.hpp"

using namespace std::chrono_literals;
using kl::verifier::parse_webhook_url;
using kl::verifier::WebhookRetryPolicy;
using kl::verifier::WebhookSender;

TEST_CASE("webhook URL parsing", "[webhook]") {
  auto e = parse_webhook_url("https://hooks.example:8443/keylime/revocation?x=1");
  REQUIRE(e);
  CHECK(e->target.tls);
  CHECK(e->target.host == "hooks.example");
  CHECK(e->target.port == 8443);
  CHECK(e->path == "/keylime/revocation?x=1");
  e = parse_webhook_url("http://127.0.0.1");
  REQUIRE(e);
  CHECK_FALSE(e->target.tls);
  CHECK(e->target.port == 80);
  CHECK(e->path == "/");
  e = parse_webhook_url("http://[::1]:9000/h");
  REQUIRE(e);
  CHECK(e->target.host == "::1");
  CHECK(e->target.port == 9000);
  CHECK_FALSE(parse_webhook_url("ftp://x/"));
  CHECK_FALSE(parse_webhook_url("http://:80/"));
  CHECK_FALSE(parse_webhook_url("http://h:99999/"));
  CHECK_FALSE(parse_webhook_url("http://h:8x/"));
  CHECK_FALSE(parse_webhook_url(""));
}

namespace {

struct Result {
  bool delivered = false;
  int attempts = 0;
  std::string error;
};

Result wait_for(std::future<Result>& f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("webhook delivery is retried until the hook accepts it", "[webhook]") {
  std::atomic<int> hits{0};
  std::string last_body;
  std::mutex m;
  kl::http::ServerOptions so;
  so.listeners.push_back({});
  kl::http::Server server(so, [&](const kl::http::Request& req) {
    kl::http::Response r;
    {
      std::lock_guard lk(m);
      last_body = req.body;
    }
    r.status = ++hits < 3 ? 503 : 200;
    return r;
  });
  server.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(server.bound_ports()[0]) + "/hook";

  kl::loop::EventLoop loop(1);
  kl::http::AsyncClient client(loop, {});
  WebhookSender sender(loop, client, WebhookRetryPolicy{5, 0.02, false, 2000ms});

  std::promise<Result> p;
  REQUIRE(sender.send(url, R"({"msg": "m", "signature": ""})",
                      [&](bool ok, int n, const std::string& e) { p.set_value({ok, n, e}); }));
  auto f = p.get_future();
  const Result r = wait_for(f);
  CHECK(r.delivered);
  CHECK(r.attempts == 3);
  CHECK(hits == 3);
  std::lock_guard lk(m);
  CHECK(last_body == R"({"msg": "m", "signature": ""})");
}

TEST_CASE("webhook delivery gives up after max_retries attempts", "[webhook]") {
  kl::loop::EventLoop loop(1);
  kl::http::AsyncClient client(loop, {});
  WebhookSender sender(loop, client, WebhookRetryPolicy{3, 0.01, false, 500ms});
  std::promise<Result> p;
  // Port 1 on loopback: nothing listens, every attempt is refused.
  REQUIRE(sender.send("http://127.0.0.1:1/hook", "{}", [&](bool ok, int n, const std::string& e) {
    p.set_value({ok, n, e});
  }));
  auto f = p.get_future();
  const Result r = wait_for(f);
  CHECK_FALSE(r.delivered);
  CHECK(r.attempts == 3);
  CHECK(r.error.rfind("connect", 0) == 0);
  CHECK_FALSE(sender.send("not a url", "{}"));
}
