// Asynchronous HTTP/1.1 client on Boost.Beast for the verifier poller.
//
// Why it looks like this:
//  * ONE ssl::context for every agent: the per-agent pin is checked in a per-connection verify callback
//    (leaf DER == pinned DER, else the normal chain result against the shared CA files), so 10k agents do not
//    each cost an SSL_CTX with its own X509_STORE.
//  * Each connection's stream runs on its own strand, so the io_context may be run by several threads.
//  * The tcp_stream deadline is set once per request, so `timeout` bounds connect + handshake + write + read.
//  * Idle keep-alive connections are pooled per (host, port, tls, pin). A pooled connection the peer has
//    closed in the meantime fails on write/read with eof/reset: the request is retried once on a fresh one.
#include "common/service/http/async_client.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::uint64_t kMaxResponseBody = 256ull * 1024 * 1024;   // IMA logs can be large

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// DER of the first certificate in a PEM text; empty when there is none.
Bytes pem_to_der(const std::string& pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ossl::last_error();
  if (!cert) return {};
  int len = i2d_X509(cert.get(), nullptr);
  if (len <= 0) return {};
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(cert.get(), &p);
  return der;
}

std::string error_text(const char* step, const beast::error_code& ec) {
  if (ec == beast::error::timeout || ec == net::error::operation_aborted) return "timeout";
  return std::string(step) + ": " + ec.message();
}

bool is_stale_connection_error(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == ssl::error::stream_truncated || ec == bhttp::error::partial_message;
}

}  // namespace

struct AsyncClient::Impl : std::enable_shared_from_this<AsyncClient::Impl> {
  net::io_context& io;
  AsyncClientOptions opts;
  ssl::context ctx{ssl::context::tls_client};

  std::mutex mu;
  struct Conn;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Conn>>> idle;
  std::size_t idle_count = 0;
  bool closed = false;
  std::atomic<std::size_t> opened{0};

  Impl(net::io_context& io_, AsyncClientOptions o) : io(io_), opts(std::move(o)) {
    SSL_CTX* h = ctx.native_handle();
    SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Idle keep-alive TLS connections then hold no read/write buffers (~34 KB each otherwise).
    SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
    ctx.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    for (const auto& f : opts.ca_files) {
      ctx.load_verify_file(f, ec);
      if (ec) throw std::runtime_error("cannot load trusted server CA '" + f + "': " + ec.message());
    }
    if (!opts.client_key_password.empty()) {
      ctx.set_password_callback(
          [pw = opts.client_key_password](std::size_t, ssl::context::password_purpose) { return pw; });
    }
    if (!opts.client_cert_file.empty()) {
      ctx.use_certificate_chain_file(opts.client_cert_file, ec);
      if (ec) throw std::runtime_error("cannot load client certificate '" + opts.client_cert_file + "': " + ec.message());
      const std::string& key = opts.client_key_file.empty() ? opts.client_cert_file : opts.client_key_file;
      ctx.use_private_key_file(key, ssl::context::pem, ec);
      if (ec) throw std::runtime_error("cannot load client key '" + key + "': " + ec.message());
      if (SSL_CTX_check_private_key(h) != 1)
        throw std::runtime_error("client key '" + key + "' does not match certificate '" + opts.client_cert_file + "'");
    }
  }

  static std::string pool_key(const AsyncTarget& t) {
    std::string k = t.host;
    k += '|';
    k += std::to_string(t.port);
    k += t.tls ? "|s|" : "|p|";
    // The pin is part of the identity: a connection verified against one pin must never serve another.
    if (t.tls && !t.pinned_server_pem.empty())
      k += hex_encode(crypto::digest(crypto::HashAlg::sha256, as_bytes(t.pinned_server_pem)));
    return k;
  }

  std::shared_ptr<Conn> take_idle(const std::string& key) {
    std::lock_guard<std::mutex> lk(mu);
    auto it = idle.find(key);
    if (it == idle.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    if (it->second.empty()) idle.erase(it);
    --idle_count;
    return c;
  }

  // True when the connection was pooled (caller must not touch it afterwards).
  bool give_back(const std::string& key, std::shared_ptr<Conn> c) {
    std::lock_guard<std::mutex> lk(mu);
    if (closed || idle_count >= opts.max_idle_connections) return false;
    idle[key].push_back(std::move(c));
    ++idle_count;
    return true;
  }

  void shutdown() {
    decltype(idle) drop;
    {
      std::lock_guard<std::mutex> lk(mu);
      closed = true;
      drop.swap(idle);
      idle_count = 0;
    }
    // Idle connections have no pending operation; closing them here is safe.
    for (auto& [k, v] : drop)
      for (auto& c : v) c->close_now();
  }

  struct Conn : std::enable_shared_from_this<Conn> {
    std::shared_ptr<Impl> owner;
    std::string key;
    bool tls;
    std::shared_ptr<const Bytes> pinned_der;   // shared with the retry connection; never the PEM (memory per idle conn)
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
    tcp::resolver resolver;

    // The request in flight (one at a time per connection).
    std::string host;
    std::uint16_t port = 0;
    bhttp::request<bhttp::string_body> req;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    beast::flat_buffer buffer;
    AsyncDone done;
    bool reused = false;
    std::chrono::milliseconds timeout{0};
    std::string tls_error_detail;

    Conn(std::shared_ptr<Impl> o, std::string k, bool use_tls, std::shared_ptr<const Bytes> pin)
        : owner(std::move(o)), key(std::move(k)), tls(use_tls), pinned_der(std::move(pin)),
          resolver(net::make_strand(owner->io)) {
      auto ex = resolver.get_executor();
      if (tls) {
        secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, owner->ctx);
      } else {
        plain = std::make_unique<beast::tcp_stream>(ex);
      }
    }

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

    void close_now() {
      beast::error_code ec;
      lowest().socket().close(ec);
    }

    void finish(std::optional<ClientResponse> r, std::string err) {
      auto cb = std::move(done);
      done = nullptr;
      if (cb) cb(std::move(r), std::move(err));
    }

    // Runs on the connection's strand.
    void start() {
      lowest().expires_after(timeout);
      if (reused) {
        write();
        return;
      }
      beast::error_code ec;
      auto addr = net::ip::make_address(host, ec);
      if (!ec) {
        on_resolved({}, {tcp::endpoint(addr, port)});
        return;
      }
      resolver.async_resolve(host, std::to_string(port),
                             [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                               if (ec) return self->fail(error_text("resolve", ec));
                               std::vector<tcp::endpoint> eps;
                               for (auto& e : r) eps.push_back(e.endpoint());
                               self->on_resolved({}, eps);
                             });
    }

    void on_resolved(beast::error_code, std::vector<tcp::endpoint> eps) {
      owner->opened.fetch_add(1, std::memory_order_relaxed);
      lowest().async_connect(eps, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return self->fail(error_text("connect", ec));
        if (self->secure) return self->handshake();
        self->write();
      });
    }

    void handshake() {
      // Pin check: accept a leaf byte-identical to the registrar's mtls_cert whatever the chain says; otherwise
      // the ordinary verification against the shared CA files decides.
      auto* self_raw = this;
      secure->set_verify_callback([self_raw](bool preverified, ssl::verify_context& vctx) {
        if (preverified) return true;
        if (!self_raw->pinned_der || self_raw->pinned_der->empty()) return false;
        X509_STORE_CTX* sc = vctx.native_handle();
        X509* leaf = X509_STORE_CTX_get0_cert(sc);
        if (!leaf) return false;
        int len = i2d_X509(leaf, nullptr);
        if (len <= 0 || static_cast<std::size_t>(len) != self_raw->pinned_der->size()) return false;
        Bytes der(static_cast<std::size_t>(len));
        unsigned char* p = der.data();
        i2d_X509(leaf, &p);
        return der == *self_raw->pinned_der;
      });
      secure->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
        if (ec) {
          std::string msg = error_text("tls handshake", ec);
          long vr = SSL_get_verify_result(self->secure->native_handle());
          if (vr != X509_V_OK) msg += std::string(" (server certificate: ") + X509_verify_cert_error_string(vr) + ")";
          return self->fail(msg);
        }
        self->write();
      });
    }

    void write() {
      auto on_written = [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->fail_io("write", ec);
        self->read();
      };
      if (secure) {
        bhttp::async_write(*secure, req, std::move(on_written));
      } else {
        bhttp::async_write(*plain, req, std::move(on_written));
      }
    }

    void read() {
      parser.emplace();
      parser->body_limit(kMaxResponseBody);
      buffer.clear();
      auto on_read = [self = shared_from_this()](beast::error_code ec, std::size_t) {
        // A body delimited by the end of the connection (HTTP/1.0 servers such as the Python agent 6.7) ends,
        // over TLS, with a close without close_notify: treat that as the end of the body. The content is still
        // checked (JSON parsed, quote signature verified), so a truncation cannot pass for a valid answer.
        if (ec == ssl::error::stream_truncated && self->parser->is_header_done() && self->parser->need_eof()) {
          beast::error_code eof_ec;
          self->parser->put_eof(eof_ec);
          if (!eof_ec && self->parser->is_done()) return self->complete();
        }
        if (ec) return self->fail_io("read", ec);
        self->complete();
      };
      if (secure) {
        bhttp::async_read(*secure, buffer, *parser, std::move(on_read));
      } else {
        bhttp::async_read(*plain, buffer, *parser, std::move(on_read));
      }
    }

    void complete() {
      auto res = parser->release();
      parser.reset();
      ClientResponse out;
      out.status = static_cast<int>(res.result_int());
      out.reason = std::string(res.reason());
      out.body = std::move(res.body());
      for (const auto& f : res) out.headers[lower(std::string_view(f.name_string().data(), f.name_string().size()))] =
          std::string(f.value());
      const bool keep = res.keep_alive();
      req = {};
      buffer = beast::flat_buffer();   // release its memory while idle
      lowest().expires_never();
      auto cb = std::move(done);
      done = nullptr;
      if (!keep || !owner->give_back(key, shared_from_this())) close_now();
      if (cb) cb(std::move(out), {});
    }

    void fail_io(const char* step, const beast::error_code& ec) {
      if (reused && is_stale_connection_error(ec)) {
        // The peer closed the pooled connection while it was idle: start over on a fresh connection.
        close_now();
        auto fresh = std::make_shared<Conn>(owner, key, tls, pinned_der);
        fresh->host = std::move(host);
        fresh->port = port;
        fresh->req = std::move(req);
        fresh->done = std::move(done);
        fresh->timeout = timeout;
        net::dispatch(fresh->resolver.get_executor(), [fresh] { fresh->start(); });
        return;
      }
      fail(error_text(step, ec));
    }

    void fail(std::string err) {
      close_now();
      finish(std::nullopt, std::move(err));
    }
  };
};

AsyncClient::AsyncClient(loop::EventLoop& loop, AsyncClientOptions opts)
    : impl_(std::make_shared<Impl>(*static_cast<net::io_context*>(loop.native()), std::move(opts))) {}

AsyncClient::~AsyncClient() { impl_->shutdown(); }

void AsyncClient::request(const AsyncTarget& target, std::string method, std::string path_and_query,
                          std::string body, std::chrono::milliseconds timeout, AsyncDone done) {
  std::string key = Impl::pool_key(target);
  auto conn = impl_->take_idle(key);
  const bool reused = conn != nullptr;
  if (!conn) {
    std::shared_ptr<const Bytes> pin;
    if (target.tls && !target.pinned_server_pem.empty()) {
      pin = std::make_shared<const Bytes>(pem_to_der(target.pinned_server_pem));
    }
    conn = std::make_shared<Impl::Conn>(impl_, key, target.tls, std::move(pin));
  }
  conn->reused = reused;
  conn->host = target.host;
  conn->port = target.port;
  conn->timeout = timeout;
  conn->done = std::move(done);
  auto& req = conn->req;
  req = {};
  req.version(11);
  req.method_string(method);
  req.target(path_and_query);
  req.set(bhttp::field::host, target.host + ":" + std::to_string(target.port));
  req.set(bhttp::field::user_agent, "keylime-cpp-verifier");
  req.keep_alive(true);
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  // Always through the strand (never inline), so `done` never runs inside request().
  net::post(conn->resolver.get_executor(), [conn] { conn->start(); });
}

std::size_t AsyncClient::idle_connections() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->idle_count;
}

std::size_t AsyncClient::connections_opened() const { return impl_->opened.load(); }

}  // namespace kl::http
