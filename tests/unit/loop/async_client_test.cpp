#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "common/service/http/async_client.hpp"
#include "common/service/http/server.hpp"
#include "common/service/tls/cert_builder.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

using namespace std::chrono_literals;
using kl::http::AsyncClient;
using kl::http::AsyncClientOptions;
using kl::http::AsyncTarget;
using kl::http::ClientResponse;

namespace {

struct Outcome {
  std::optional<ClientResponse> response;
  std::string error;
};

Outcome call(AsyncClient& client, const AsyncTarget& t, const std::string& method, const std::string& path,
             std::string body = "", std::chrono::milliseconds timeout = 5s) {
  std::promise<Outcome> p;
  client.request(t, method, path, std::move(body), timeout,
                 [&p](std::optional<ClientResponse> r, std::string e) { p.set_value({std::move(r), std::move(e)}); });
  auto f = p.get_future();
  if (f.wait_for(10s) != std::future_status::ready) return {std::nullopt, "test: no completion"};
  return f.get();
}

kl::http::Response echo(const kl::http::Request& req) {
  kl::http::Response r;
  r.status = 200;
  r.content_type = "application/json";
  r.body = req.method + " " + req.target + " " + req.body + (req.peer ? " cn=" + req.peer->subject_cn : "");
  return r;
}

// Certificates: a CA with a server leaf and a client leaf, plus two unrelated self-signed server certs.
struct Pki {
  kl::testing::TempDir dir;
  std::string ca_file, ca_server_cert, ca_server_key, client_cert, client_key;
  std::string self_a_cert, self_a_key, self_a_pem, self_b_pem;

  Pki() {
    auto p = [&](const char* n) { return (dir.path() / n).string(); };
    auto ca_key = kl::tls::generate_rsa_key(2048);
    auto ca = kl::tls::issue_certificate({"test CA", {}, true, 30}, ca_key.get(), nullptr, nullptr);
    ca_file = p("ca.crt");
    kl::tls::write_file(ca_file, kl::tls::to_pem(ca.get()), 0644, false);
    auto leaf = [&](const std::string& cn, const std::string& cert_name, const std::string& key_name, bool self) {
      auto key = kl::tls::generate_rsa_key(2048);
      auto cert = self ? kl::tls::issue_certificate({cn, {"127.0.0.1"}, false, 30}, key.get(), nullptr, nullptr)
                       : kl::tls::issue_certificate({cn, {"127.0.0.1"}, false, 30}, key.get(), ca.get(), ca_key.get());
      kl::tls::write_file(p(cert_name.c_str()), kl::tls::to_pem(cert.get()), 0644, false);
      kl::tls::write_file(p(key_name.c_str()), kl::tls::to_pem(key.get()), 0600, false);
      return kl::tls::to_pem(cert.get());
    };
    leaf("ca-server", "ca-server.crt", "ca-server.key", false);
    ca_server_cert = p("ca-server.crt");
    ca_server_key = p("ca-server.key");
    leaf("verifier-client", "client.crt", "client.key", false);
    client_cert = p("client.crt");
    client_key = p("client.key");
    self_a_pem = leaf("agent-a", "a.crt", "a.key", true);
    self_a_cert = p("a.crt");
    self_a_key = p("a.key");
    self_b_pem = leaf("agent-b", "b.crt", "b.key", true);
  }
};

Pki& pki() {
  static Pki instance;   // RSA key generation is slow; share across test cases
  return instance;
}

std::unique_ptr<kl::http::Server> start_server(std::optional<kl::http::TlsServerConfig> tls,
                                               kl::http::Handler h = echo, std::uint16_t port = 0) {
  kl::http::ServerOptions so;
  kl::http::ListenerConfig l;
  l.port = port;
  l.tls = std::move(tls);
  so.listeners.push_back(l);
  so.threads = 2;
  auto s = std::make_unique<kl::http::Server>(so, std::move(h));
  s->start();
  return s;
}

}  // namespace

TEST_CASE("async client: plain HTTP GET and POST", "[async_client]") {
  auto server = start_server(std::nullopt);
  kl::loop::EventLoop loop(2);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], false, ""};

  auto r = call(client, t, "GET", "/v2.1/quotes/integrity?nonce=abc&mask=0x1");
  REQUIRE(r.error == "");
  REQUIRE(r.response);
  CHECK(r.response->status == 200);
  CHECK(r.response->body == "GET /v2.1/quotes/integrity?nonce=abc&mask=0x1 ");
  CHECK(r.response->headers.at("content-type") == "application/json");

  r = call(client, t, "POST", "/v2.1/keys/vkey", R"({"encrypted_key":"x"})");
  REQUIRE(r.response);
  CHECK(r.response->body == R"(POST /v2.1/keys/vkey {"encrypted_key":"x"})");
}

TEST_CASE("async client: keep-alive connections are reused", "[async_client]") {
  auto server = start_server(std::nullopt);
  kl::loop::EventLoop loop(2);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], false, ""};
  for (int i = 0; i < 5; ++i) {
    auto r = call(client, t, "GET", "/n/" + std::to_string(i));
    REQUIRE(r.response);
    CHECK(r.response->body == "GET /n/" + std::to_string(i) + " ");
  }
  CHECK(client.connections_opened() == 1);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("async client: a pooled connection closed by the server is replaced transparently", "[async_client]") {
  auto server = start_server(std::nullopt);
  const auto port = server->bound_ports()[0];
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", port, false, ""};
  REQUIRE(call(client, t, "GET", "/one").response);
  server->stop();
  server.reset();
  server = start_server(std::nullopt, echo, port);   // same port, the old connection is dead
  auto r = call(client, t, "GET", "/two");
  REQUIRE(r.error == "");
  REQUIRE(r.response);
  CHECK(r.response->body == "GET /two ");
  CHECK(client.connections_opened() == 2);
}

TEST_CASE("async client: many concurrent requests", "[async_client]") {
  auto server = start_server(std::nullopt);
  kl::loop::EventLoop loop(2);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], false, ""};
  constexpr int kN = 200;
  std::atomic<int> ok{0}, done{0};
  std::promise<void> all;
  for (int i = 0; i < kN; ++i) {
    client.request(t, "GET", "/c/" + std::to_string(i), "", 10s,
                   [&, i](std::optional<ClientResponse> r, std::string) {
                     if (r && r->body == "GET /c/" + std::to_string(i) + " ") ++ok;
                     if (++done == kN) all.set_value();
                   });
  }
  REQUIRE(all.get_future().wait_for(20s) == std::future_status::ready);
  CHECK(ok == kN);
  CHECK(client.connections_opened() <= static_cast<std::size_t>(kN));
  CHECK(client.idle_connections() == client.connections_opened());
}

TEST_CASE("async client: timeout fires", "[async_client]") {
  auto server = start_server(std::nullopt, [](const kl::http::Request& req) {
    std::this_thread::sleep_for(600ms);
    return echo(req);
  });
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], false, ""};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(client, t, "GET", "/slow", "", 150ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK_FALSE(r.response);
  CHECK(r.error == "timeout");
  CHECK(took < 550ms);
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("async client: server down gives a connect error", "[async_client]") {
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  AsyncTarget t{"127.0.0.1", kl::testing::free_tcp_port(), false, ""};
  auto r = call(client, t, "GET", "/version");
  CHECK_FALSE(r.response);
  CHECK(r.error.rfind("connect: ", 0) == 0);
}

TEST_CASE("async client: TLS with a pinned self-signed agent certificate", "[async_client][tls]") {
  auto& k = pki();
  kl::http::TlsServerConfig tls;
  tls.cert_file = k.self_a_cert;
  tls.key_file = k.self_a_key;
  tls.trusted_client_ca_files = {k.ca_file};
  auto server = start_server(tls);
  kl::loop::EventLoop loop(2);
  AsyncClientOptions opts;
  opts.client_cert_file = k.client_cert;
  opts.client_key_file = k.client_key;
  opts.ca_files = {k.ca_file};
  AsyncClient client(loop, opts);
  const auto port = server->bound_ports()[0];

  SECTION("the pinned certificate is accepted and the client certificate is presented") {
    AsyncTarget t{"127.0.0.1", port, true, k.self_a_pem};
    auto r = call(client, t, "GET", "/version");
    REQUIRE(r.error == "");
    REQUIRE(r.response);
    CHECK(r.response->body == "GET /version  cn=verifier-client");
    REQUIRE(call(client, t, "GET", "/again").response);
    CHECK(client.connections_opened() == 1);
  }
  SECTION("another self-signed certificate as pin is refused") {
    AsyncTarget t{"127.0.0.1", port, true, k.self_b_pem};
    auto r = call(client, t, "GET", "/version");
    CHECK_FALSE(r.response);
    CHECK(r.error.rfind("tls handshake: ", 0) == 0);
    CHECK(r.error.find("self-signed") != std::string::npos);
  }
  SECTION("no pin: a self-signed certificate does not chain to the CA files") {
    AsyncTarget t{"127.0.0.1", port, true, ""};
    auto r = call(client, t, "GET", "/version");
    CHECK_FALSE(r.response);
    CHECK(r.error.rfind("tls handshake: ", 0) == 0);
  }
  SECTION("a pinned connection is never reused for another pin") {
    AsyncTarget good{"127.0.0.1", port, true, k.self_a_pem};
    AsyncTarget bad{"127.0.0.1", port, true, k.self_b_pem};
    REQUIRE(call(client, good, "GET", "/x").response);
    CHECK(client.idle_connections() == 1);
    auto r = call(client, bad, "GET", "/y");
    CHECK_FALSE(r.response);
    CHECK(client.idle_connections() == 1);
  }
}

TEST_CASE("async client: TLS server certificate chaining to the shared CA needs no pin", "[async_client][tls]") {
  auto& k = pki();
  kl::http::TlsServerConfig tls;
  tls.cert_file = k.ca_server_cert;
  tls.key_file = k.ca_server_key;
  auto server = start_server(tls);
  kl::loop::EventLoop loop(1);
  AsyncClientOptions opts;
  opts.ca_files = {k.ca_file};
  AsyncClient client(loop, opts);
  // A pin that does not match does not matter when the chain verifies (pin OR CA, as upstream's trust list).
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], true, k.self_b_pem};
  auto r = call(client, t, "GET", "/version");
  REQUIRE(r.error == "");
  REQUIRE(r.response);
  CHECK(r.response->status == 200);

  AsyncClient no_ca(loop, {});
  auto r2 = call(no_ca, AsyncTarget{"127.0.0.1", server->bound_ports()[0], true, ""}, "GET", "/version");
  CHECK_FALSE(r2.response);
  CHECK(r2.error.find("tls handshake") == 0);
}

TEST_CASE("async client: plain client against a TLS server fails cleanly", "[async_client][tls]") {
  auto& k = pki();
  kl::http::TlsServerConfig tls;
  tls.cert_file = k.self_a_cert;
  tls.key_file = k.self_a_key;
  auto server = start_server(tls);
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  auto r = call(client, AsyncTarget{"127.0.0.1", server->bound_ports()[0], false, ""}, "GET", "/version", "", 2s);
  CHECK_FALSE(r.response);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("async client: bad client certificate file throws at construction", "[async_client]") {
  kl::loop::EventLoop loop(1);
  AsyncClientOptions opts;
  opts.client_cert_file = "/nonexistent/cert.pem";
  CHECK_THROWS_WITH(AsyncClient(loop, opts), Catch::Contains("cannot load client certificate"));
}

namespace {

// A one-shot HTTP/1.0-style TLS server, as the Python agent 6.7 behaves: it answers without Content-Length and
// closes the TCP connection without a TLS close_notify.
struct AbruptTlsServer {
  boost::asio::io_context io;
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_server};
  boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  std::thread worker;

  AbruptTlsServer(const Pki& k, std::string response) {
    ctx.use_certificate_chain_file(k.self_a_cert);
    ctx.use_private_key_file(k.self_a_key, boost::asio::ssl::context::pem);
    worker = std::thread([this, response = std::move(response)] {
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket> s(io, ctx);
      acceptor.accept(s.lowest_layer());
      s.handshake(boost::asio::ssl::stream_base::server);
      boost::asio::streambuf in;
      boost::asio::read_until(s, in, "\r\n\r\n");
      boost::asio::write(s, boost::asio::buffer(response));
      s.lowest_layer().close();   // no SSL_shutdown
    });
  }
  ~AbruptTlsServer() { worker.join(); }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

}  // namespace

TEST_CASE("async client: an EOF-delimited body over TLS closed without close_notify is complete",
          "[async_client][tls]") {
  auto& k = pki();
  kl::loop::EventLoop loop(1);
  AsyncClient client(loop, {});
  SECTION("no Content-Length: the body ends with the connection") {
    AbruptTlsServer server(k, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"code\": 200}");
    auto r = call(client, AsyncTarget{"127.0.0.1", server.port(), true, k.self_a_pem}, "GET", "/v2.1/quotes/integrity");
    REQUIRE(r.error == "");
    REQUIRE(r.response);
    CHECK(r.response->status == 200);
    CHECK(r.response->body == "{\"code\": 200}");
    CHECK(client.idle_connections() == 0);
  }
  SECTION("a Content-Length body cut short is still an error") {
    AbruptTlsServer server(k, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"code\": 2");
    auto r = call(client, AsyncTarget{"127.0.0.1", server.port(), true, k.self_a_pem}, "GET", "/x");
    CHECK_FALSE(r.response);
    CHECK(r.error.rfind("read: ", 0) == 0);
  }
}

TEST_CASE("async client: connections beyond max_concurrent_opens wait their turn", "[async_client]") {
  auto server = start_server(std::nullopt);
  kl::loop::EventLoop loop(2);
  AsyncClientOptions opts;
  opts.max_concurrent_opens = 2;
  AsyncClient client(loop, opts);
  AsyncTarget t{"127.0.0.1", server->bound_ports()[0], false, ""};
  constexpr int kN = 40;
  std::atomic<int> ok{0}, done{0};
  std::promise<void> all;
  for (int i = 0; i < kN; ++i) {
    client.request(t, "GET", "/q/" + std::to_string(i), "", 10s, [&, i](std::optional<ClientResponse> r, std::string) {
      if (r && r->body == "GET /q/" + std::to_string(i) + " ") ++ok;
      if (++done == kN) all.set_value();
    });
  }
  REQUIRE(all.get_future().wait_for(20s) == std::future_status::ready);
  CHECK(ok == kN);
  // Queued requests may reuse a connection that went idle meanwhile, so how many were opened depends on timing;
  // never more than one per request.
  CHECK(client.connections_opened() >= 1);
  CHECK(client.connections_opened() <= static_cast<std::size_t>(kN));

  SECTION("a request that times out while waiting for a slot fails with timeout, and slots come back") {
    // A listener that never accepts nor answers: connect succeeds (kernel backlog), the TLS handshake hangs.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    AsyncTarget mute{"127.0.0.1", ntohs(a.sin_port), true, ""};

    AsyncClientOptions one;
    one.max_concurrent_opens = 1;
    AsyncClient c1(loop, one);
    std::promise<Outcome> first;
    c1.request(mute, "GET", "/first", "", 800ms, [&](std::optional<ClientResponse> r, std::string e) {
      first.set_value({std::move(r), std::move(e)});
    });
    std::this_thread::sleep_for(50ms);   // the first one holds the only slot
    const auto t0 = std::chrono::steady_clock::now();
    auto second = call(c1, t, "GET", "/second", "", 150ms);
    CHECK(second.error == "timeout");
    CHECK(std::chrono::steady_clock::now() - t0 < 600ms);
    auto f = first.get_future().get();
    CHECK(f.error == "timeout");
    auto third = call(c1, t, "GET", "/third", "", 5s);   // both slots were given back
    REQUIRE(third.response);
    CHECK(third.response->body == "GET /third ");
    ::close(fd);
  }
}
