// Plain-HTTP behaviour of kl::http::Server and Client over real 127.0.0.1 sockets.
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/service/http/client.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "unit/http/raw_peer.hpp"

using namespace kl::http;
using kltest::RawSocket;

namespace {

ServerOptions plain_options(std::size_t max_body = 104857600, std::chrono::seconds idle = std::chrono::seconds(60)) {
  ServerOptions o;
  o.listeners.push_back(ListenerConfig{"127.0.0.1", 0, std::nullopt});
  o.max_body_bytes = max_body;
  o.idle_timeout = idle;
  return o;
}

// Echoes what the server parsed so tests can assert on the Request the handler saw.
Response echo(const Request& r) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : r.headers) headers[k] = v;
  nlohmann::json j = {{"method", r.method}, {"target", r.target}, {"path", r.path},    {"query", r.query},
                      {"body", r.body},     {"tls", r.tls},       {"peer", r.peer.has_value()},
                      {"remote", r.remote_address},               {"headers", headers}};
  return json_envelope(200, j);
}

}  // namespace

TEST_CASE("plain request and response round trip", "[http]") {
  Server server(plain_options(), echo);
  server.start();
  auto ports = server.bound_ports();
  REQUIRE(ports.size() == 1);
  REQUIRE(ports[0] != 0);

  Client client("127.0.0.1", ports[0]);
  auto res = client.request("POST", "/v2.1/agents/abc%20def?bulk=1&x=y", R"({"a":1})",
                            {{"X-Request-ID", "req-42/ab!c"}, {"X-Custom", "Value"}});
  CHECK(res.status == 200);
  CHECK(res.reason == "OK");
  CHECK(res.headers.at("content-type") == "application/json");
  // Non-word characters stripped (wire-contract §0.2).
  CHECK(res.headers.at("x-request-id") == "req42abc");
  auto j = nlohmann::json::parse(res.body);
  CHECK(j["code"] == 200);
  CHECK(j["status"] == "Success");
  auto& r = j["results"];
  CHECK(r["method"] == "POST");
  CHECK(r["target"] == "/v2.1/agents/abc%20def?bulk=1&x=y");
  CHECK(r["path"] == "/v2.1/agents/abc def");
  CHECK(r["query"] == "bulk=1&x=y");
  CHECK(r["body"] == R"({"a":1})");
  CHECK(r["tls"] == false);
  CHECK(r["peer"] == false);
  CHECK(r["remote"] == "127.0.0.1");
  CHECK(r["headers"]["x-custom"] == "Value");
  CHECK(r["headers"]["content-type"] == "application/json");
}

TEST_CASE("response without content type, custom reason and extra headers", "[http]") {
  Server server(plain_options(), [](const Request& r) {
    if (r.path == "/empty") return empty_status(400, "Malformed Request Parameter");
    Response res;
    res.status = 299;
    res.body = "raw";
    res.headers.push_back({"X-Extra", "one\r\nInjected: yes"});
    return res;
  });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0]);

  auto a = client.request("GET", "/empty");
  CHECK(a.status == 400);
  CHECK(a.reason == "Malformed Request Parameter");
  CHECK(a.body.empty());
  CHECK(a.headers.count("content-type") == 0);
  CHECK(a.headers.at("x-request-id").empty());

  auto b = client.request("GET", "/other");
  CHECK(b.status == 299);
  CHECK(b.reason == "Unknown");
  CHECK(b.body == "raw");
  CHECK(b.headers.count("content-type") == 0);
  CHECK(b.headers.at("x-extra") == "oneInjected: yes");
  CHECK(b.headers.count("injected") == 0);
}

TEST_CASE("X-Request-ID is truncated to 36 characters", "[http]") {
  Server server(plain_options(), [](const Request&) { return json_envelope(200); });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0]);
  std::string id(50, 'a');
  id[40] = 'b';
  auto res = client.request("GET", "/", "", {{"X-Request-ID", "--" + id}});
  CHECK(res.headers.at("x-request-id") == std::string(36, 'a'));
  CHECK(res.body == R"({"code":200,"status":"Success","results":{}})");
}

TEST_CASE("keep-alive: several requests on one connection", "[http]") {
  std::atomic<int> calls{0};
  Server server(plain_options(), [&](const Request& r) {
    ++calls;
    return json_envelope(200, {{"path", r.path}});
  });
  server.start();
  RawSocket sock(server.bound_ports()[0]);
  for (int i = 0; i < 3; ++i) {
    sock.send_all("GET /n" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto res = sock.read_response();
    REQUIRE(res.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(res.find("\"path\":\"/n" + std::to_string(i) + "\"") != std::string::npos);
  }
  // Pipelined: two requests in one write, two responses in order.
  sock.send_all("GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(sock.read_response().find("/p1") != std::string::npos);
  CHECK(sock.read_response().find("/p2") != std::string::npos);
  CHECK_FALSE(sock.closed());
  CHECK(calls == 5);

  // Connection: close is honoured.
  sock.send_all("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto last = sock.read_until_close();
  CHECK(last.find("/last") != std::string::npos);
  CHECK(sock.closed());
}

TEST_CASE("client reconnects after the server closed an idle connection", "[http]") {
  std::atomic<int> calls{0};
  Server server(plain_options(104857600, std::chrono::seconds(1)), [&](const Request&) {
    ++calls;
    return json_envelope(200);
  });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0]);
  CHECK(client.request("GET", "/a").status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  CHECK(client.request("POST", "/b", "{}").status == 200);
  CHECK(calls == 2);
}

TEST_CASE("idle connection is closed after idle_timeout", "[http]") {
  Server server(plain_options(104857600, std::chrono::seconds(1)), [](const Request&) { return json_envelope(200); });
  server.start();
  RawSocket sock(server.bound_ports()[0]);
  auto t0 = std::chrono::steady_clock::now();
  auto data = sock.read_until_close(std::chrono::milliseconds(4000));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(data.empty());
  CHECK(sock.closed());
  CHECK(elapsed >= std::chrono::milliseconds(900));
  CHECK(elapsed < std::chrono::milliseconds(3500));
}

TEST_CASE("oversized body gets 413 envelope and the connection closes", "[http]") {
  std::atomic<int> calls{0};
  Server server(plain_options(1024), [&](const Request&) {
    ++calls;
    return json_envelope(200);
  });
  server.start();
  auto port = server.bound_ports()[0];

  SECTION("declared by Content-Length") {
    RawSocket sock(port);
    std::string body(2000, 'x');
    sock.send_all("POST /big HTTP/1.1\r\nHost: x\r\nX-Request-ID: big1\r\nContent-Length: 2000\r\n\r\n" + body);
    auto res = sock.read_until_close();
    INFO(res);
    REQUIRE(res.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0) == 0);
    CHECK(res.find("X-Request-ID: big1") != std::string::npos);
    CHECK(res.find(R"({"code":413,"status":"Payload Too Large","results":{}})") != std::string::npos);
    CHECK(sock.closed());
  }
  SECTION("chunked") {
    RawSocket sock(port);
    std::string chunk(800, 'y');
    sock.send_all("POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk + "\r\n320\r\n" +
                  chunk + "\r\n0\r\n\r\n");
    auto res = sock.read_until_close();
    CHECK(res.rfind("HTTP/1.1 413 ", 0) == 0);
    CHECK(sock.closed());
  }
  SECTION("through the client") {
    Client client("127.0.0.1", port);
    auto res = client.request("PUT", "/big", std::string(5000, 'z'));
    CHECK(res.status == 413);
    CHECK(nlohmann::json::parse(res.body)["code"] == 413);
    // The next request opens a new connection and is served.
    CHECK(client.request("PUT", "/small", std::string(1024, 'z')).status == 200);
  }
  CHECK(calls <= 1);
}

TEST_CASE("malformed HTTP gets 400 and the connection closes", "[http]") {
  std::atomic<int> calls{0};
  Server server(plain_options(), [&](const Request&) {
    ++calls;
    return json_envelope(200);
  });
  server.start();
  auto port = server.bound_ports()[0];
  for (const std::string& garbage : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.x\r\n\r\n"),
                                    std::string("GET / HTTP/1.1\r\nBad Header Line\r\n\r\n"),
                                    std::string("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
                                    std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)}) {
    RawSocket sock(port);
    sock.send_all(garbage);
    auto res = sock.read_until_close();
    INFO(garbage);
    CHECK(res.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(res.find("Content-Length: 0") != std::string::npos);
    CHECK(sock.closed());
  }
  // Oversized header block.
  RawSocket sock(port);
  sock.send_all("GET / HTTP/1.1\r\nX-Big: " + std::string(40000, 'h') + "\r\n\r\n");
  auto res = sock.read_until_close();
  CHECK(res.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(calls == 0);
}

TEST_CASE("handler exception gives 500 with empty body and the server keeps serving", "[http]") {
  Server server(plain_options(), [](const Request& r) -> Response {
    if (r.path == "/throw") throw std::runtime_error("boom");
    if (r.path == "/throw-int") throw 42;
    return json_envelope(200);
  });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0]);
  auto a = client.request("GET", "/throw");
  CHECK(a.status == 500);
  CHECK(a.reason == "Internal Server Error");
  CHECK(a.body.empty());
  CHECK(client.request("GET", "/throw-int").status == 500);
  CHECK(client.request("GET", "/fine").status == 200);
}

TEST_CASE("start reports a busy port by address:port - stop is idempotent", "[http]") {
  Server first(plain_options(), [](const Request&) { return json_envelope(200); });
  first.start();
  auto port = first.bound_ports()[0];

  ServerOptions o;
  o.listeners.push_back(ListenerConfig{"127.0.0.1", port, std::nullopt});
  Server second(o, [](const Request&) { return json_envelope(200); });
  try {
    second.start();
    FAIL("second bind succeeded");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
  ServerOptions bad;
  bad.listeners.push_back(ListenerConfig{"not-an-ip", 0, std::nullopt});
  Server third(bad, [](const Request&) { return json_envelope(200); });
  CHECK_THROWS_WITH(third.start(), Catch::Contains("not-an-ip:0"));

  first.stop();
  first.stop();
  CHECK_THROWS_AS(Client("127.0.0.1", port).request("GET", "/"), std::runtime_error);
}

TEST_CASE("client errors name the failure", "[http]") {
  // A handler slower than the client's deadline: the client must time out, not hang.
  Server server(plain_options(), [](const Request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return json_envelope(200);
  });
  server.start();
  ClientOptions opts;
  opts.timeout = std::chrono::milliseconds(300);
  Client slow("127.0.0.1", server.bound_ports()[0], opts);
  CHECK_THROWS_WITH(slow.request("GET", "/"), Catch::Contains("timed out"));

  server.stop();
  Client refused("127.0.0.1", server.bound_ports().empty() ? 1 : server.bound_ports()[0]);
  CHECK_THROWS_WITH(refused.request("GET", "/"), Catch::Contains("connect to 127.0.0.1"));
}

TEST_CASE("multi-threaded server handles concurrent clients", "[http]") {
  auto o = plain_options();
  o.threads = 2;
  std::atomic<int> calls{0};
  Server server(o, [&](const Request& r) {
    ++calls;
    return json_envelope(200, {{"body", r.body}});
  });
  server.start();
  auto port = server.bound_ports()[0];
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      Client c("127.0.0.1", port);
      for (int i = 0; i < 100; ++i) {
        std::string body = std::to_string(t) + ":" + std::to_string(i);
        auto res = c.request("POST", "/x", body);
        if (res.status == 200 && nlohmann::json::parse(res.body)["results"]["body"] == body) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(ok == 400);
  CHECK(calls == 400);
}

TEST_CASE("throughput: 2000 keep-alive requests", "[http][perf]") {
  Server server(plain_options(), [](const Request&) { return json_envelope(200, {{"ok", true}}); });
  server.start();
  Client client("127.0.0.1", server.bound_ports()[0]);
  auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < 2000; ++i) ok += client.request("GET", "/v2/agents/x").status == 200;
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("2000 requests in " << secs << " s (" << 2000 / secs << " req/s, client and server on the same machine)");
  CHECK(ok == 2000);
  // Loose bound: the machine is shared; the point is that nothing is pathologically slow.
  CHECK(secs < 5.0);
}
