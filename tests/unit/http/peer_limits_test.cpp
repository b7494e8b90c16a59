// Per-peer connection cap and request token bucket (the HTTP server's admission control).
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "common/service/config/config.hpp"
#include "common/service/http/peer_limits.hpp"
#include "common/service/http/server_tuning.hpp"

using kl::http::PeerLimits;
using kl::http::PeerLimitsConfig;

TEST_CASE("peer limits: connection cap is per address and slots are given back", "[http][limits]") {
  PeerLimits l(PeerLimitsConfig{3, 0});
  for (int i = 0; i < 3; ++i) CHECK(l.acquire_connection("127.0.0.2"));
  CHECK_FALSE(l.acquire_connection("127.0.0.2"));
  CHECK(l.acquire_connection("127.0.0.3"));  // another peer is not affected
  CHECK(l.connections("127.0.0.2") == 3);
  l.release_connection("127.0.0.2");
  CHECK(l.acquire_connection("127.0.0.2"));
  for (int i = 0; i < 3; ++i) l.release_connection("127.0.0.2");
  l.release_connection("127.0.0.3");
  l.release_connection("127.0.0.9");  // unknown: harmless
  CHECK(l.tracked_peers() == 0);       // nothing remembered about idle peers without a rate limit
}

TEST_CASE("peer limits: 0 disables both limits", "[http][limits]") {
  PeerLimits l(PeerLimitsConfig{0, 0});
  for (int i = 0; i < 10000; ++i) REQUIRE(l.acquire_connection("p"));
  for (int i = 0; i < 10000; ++i) REQUIRE(l.allow_request("p"));
}

TEST_CASE("peer limits: token bucket allows a burst of twice the rate, then the rate", "[http][limits]") {
  PeerLimits l(PeerLimitsConfig{0, 10});
  const auto t0 = PeerLimits::Clock::now();
  int ok = 0;
  for (int i = 0; i < 50; ++i) ok += l.allow_request("a", t0) ? 1 : 0;
  CHECK(ok == 20);
  CHECK_FALSE(l.allow_request("a", t0));
  CHECK(l.allow_request("b", t0));  // per peer
  // 0.5 s later: 5 more tokens.
  ok = 0;
  for (int i = 0; i < 50; ++i) ok += l.allow_request("a", t0 + std::chrono::milliseconds(500)) ? 1 : 0;
  CHECK(ok == 5);
  // A clock that goes backwards adds nothing.
  CHECK_FALSE(l.allow_request("a", t0));
  // Long idle refills to the burst, not beyond.
  ok = 0;
  for (int i = 0; i < 100; ++i) ok += l.allow_request("a", t0 + std::chrono::hours(1)) ? 1 : 0;
  CHECK(ok == 20);
}

TEST_CASE("peer limits: concurrent acquire/release keeps the count exact", "[http][limits]") {
  PeerLimits l(PeerLimitsConfig{1000000, 0});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        REQUIRE(l.acquire_connection("x"));
        l.release_connection("x");
      }
    });
  for (auto& t : ts) t.join();
  CHECK(l.connections("x") == 0);
}

TEST_CASE("server tuning keys: defaults, values and bad values", "[http][limits][config]") {
  auto c = kl::config::Config::from_string("registrar", "[registrar]\n");
  auto t = kl::http::read_server_tuning(c, "registrar");
  CHECK(t.request_timeout == std::chrono::seconds(60));
  CHECK(t.peer_limits.max_connections_per_peer == 512);
  CHECK(t.peer_limits.max_requests_per_second_per_peer == 10000.0);
  auto c2 = kl::config::Config::from_string(
      "registrar",
      "[registrar]\nserver_request_timeout = 5\nserver_max_connections_per_peer = 0\n"
      "server_max_requests_per_second_per_peer = 2.5\n");
  t = kl::http::read_server_tuning(c2, "registrar");
  CHECK(t.request_timeout == std::chrono::seconds(5));
  CHECK(t.peer_limits.max_connections_per_peer == 0);
  CHECK(t.peer_limits.max_requests_per_second_per_peer == 2.5);
  kl::http::ServerOptions o;
  t.apply(o);
  CHECK(o.idle_timeout == std::chrono::seconds(5));
  for (const char* bad : {"server_request_timeout = 0", "server_request_timeout = x", "server_max_connections_per_peer = -1",
                          "server_max_requests_per_second_per_peer = -3"}) {
    auto cb = kl::config::Config::from_string("verifier", std::string("[verifier]\n") + bad + "\n");
    CHECK_THROWS_AS(kl::http::read_server_tuning(cb, "verifier"), kl::config::ConfigError);
  }
}
