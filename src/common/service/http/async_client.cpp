// Asynchronous HTTP/1.1 client for the verifier poller: thousands of kept-alive agent connections, few threads.
//
// Why it looks like this:
//  * TLS is OpenSSL driven directly on the non-blocking socket (SSL_set_fd) and asio only reports readiness
//    (socket::async_wait). asio's ssl::stream carries ~68 KB of fixed buffers per stream (two 17 KB engine
//    buffers + a 2 x 17 KB BIO pair), which made an idle kept-alive mTLS connection cost ~90 KB; here, with
//    SSL_MODE_RELEASE_BUFFERS, an idle connection holds only the SSL object and its session. Reads go through one
//    per-thread buffer, writes from the request text itself.
//  * ONE SSL_CTX for every agent: the per-agent pin is checked in a verify callback that finds the connection's
//    pinned DER through SSL ex_data (leaf DER == pinned DER, else the normal chain result against the shared CA
//    files), so 10k agents do not each cost an SSL_CTX with its own X509_STORE.
//  * Each connection runs on its own strand, so the io_context may be run by several threads. request() only
//    posts the prepared request text to that strand; all connection state is touched on the strand alone.
//  * One deadline per request bounds connect + handshake + write + read (and the wait for an opening slot).
//  * At most max_concurrent_opens connections are being opened (connect + TLS handshake) at once, the others wait
//    in FIFO order: 10,000 agents started together otherwise run 10,000 interleaved handshakes that all finish
//    late (past their timeout, on a busy machine), are retried, and never settle.
//  * Idle keep-alive connections are pooled per (host, port, tls, pin). A pooled connection the peer has closed
//    in the meantime fails before any response byte: the request is retried once on a fresh connection.
//  * The response is parsed by Beast's parser fed from our buffer (no Beast stream in between).
#include "common/service/http/async_client.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <climits>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <openssl/err.h>
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
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::uint64_t kMaxResponseBody = 256ull * 1024 * 1024;   // IMA logs can be large
constexpr std::size_t kReadChunk = 16 * 1024 + 512;                // one TLS record

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

std::string error_text(const char* step, const error_code& ec) {
  if (ec == net::error::operation_aborted) return "timeout";
  return std::string(step) + ": " + ec.message();
}

// The SSL ex_data slot holding the connection's pinned DER (const Bytes*, may be null).
int pin_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// Pin check: accept a leaf byte-identical to the registrar's mtls_cert whatever the chain says; otherwise the
// ordinary verification against the shared CA files decides.
int verify_with_pin(int preverified, X509_STORE_CTX* sc) {
  if (preverified) return 1;
  auto* s = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* pin = s ? static_cast<const Bytes*>(SSL_get_ex_data(s, pin_index())) : nullptr;
  if (!pin || pin->empty()) return 0;
  X509* leaf = X509_STORE_CTX_get0_cert(sc);
  if (!leaf) return 0;
  const int len = i2d_X509(leaf, nullptr);
  if (len <= 0 || static_cast<std::size_t>(len) != pin->size()) return 0;
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(leaf, &p);
  return der == *pin ? 1 : 0;
}

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

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
  // Connections being opened (connect + TLS handshake) and those waiting for a slot, guarded by mu.
  std::size_t opening = 0;
  std::deque<std::shared_ptr<Conn>> waiting_to_open;

  Impl(net::io_context& io_, AsyncClientOptions o) : io(io_), opts(std::move(o)) {
    SSL_CTX* h = ctx.native_handle();
    SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Idle keep-alive connections hold no read/write buffers; writes may be partial on the non-blocking socket.
    SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER, verify_with_pin);
    error_code ec;
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

  // True when the connection was pooled (caller must not touch it afterwards, except to return).
  bool give_back(const std::string& key, std::shared_ptr<Conn> c) {
    std::lock_guard<std::mutex> lk(mu);
    if (closed || idle_count >= opts.max_idle_connections) return false;
    idle[key].push_back(std::move(c));
    ++idle_count;
    return true;
  }

  // True: the caller holds an opening slot now. False: queued, open_finished() hands it a slot later.
  bool admit_open(const std::shared_ptr<Conn>& c) {
    std::lock_guard<std::mutex> lk(mu);
    if (opening < std::max<std::size_t>(1, opts.max_concurrent_opens)) {
      ++opening;
      return true;
    }
    waiting_to_open.push_back(c);
    return false;
  }

  // A slot is free again: it goes to the oldest waiting connection (which gives it back at once if its request
  // has failed in the meantime, e.g. timed out while waiting).
  void open_finished() {
    std::shared_ptr<Conn> next;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (waiting_to_open.empty()) {
        --opening;
        return;
      }
      next = std::move(waiting_to_open.front());
      waiting_to_open.pop_front();
    }
    net::post(next->strand, [next] { next->slot_granted(); });
  }

  void shutdown() {
    decltype(idle) drop;
    decltype(waiting_to_open) waiting;
    {
      std::lock_guard<std::mutex> lk(mu);
      closed = true;
      drop.swap(idle);
      idle_count = 0;
      waiting.swap(waiting_to_open);
    }
    for (auto& [k, v] : drop)
      for (auto& c : v) net::post(c->strand, [c] { c->close_now(); });
  }

  // One request as prepared by request(): everything the connection needs, handed over to its strand.
  struct Pending {
    std::string host;
    std::uint16_t port = 0;
    std::string wire;   // the serialized request
    bool head = false;
    std::chrono::milliseconds timeout{0};
    AsyncDone done;
  };

  struct Conn : std::enable_shared_from_this<Conn> {
    std::shared_ptr<Impl> owner;
    std::string key;
    std::shared_ptr<const Bytes> pinned_der;   // shared with the retry connection; never the PEM (memory per idle conn)
    bool tls;
    net::strand<net::io_context::executor_type> strand;
    tcp::socket sock;
    net::steady_timer deadline;
    std::unique_ptr<SSL, SslFree> ssl;
    bool connected = false;
    bool holds_open_slot = false;   // one of Impl's max_concurrent_opens slots (connect + handshake)

    // The request in flight (one at a time per connection); `p.done` empty = none.
    Pending p;
    enum class Phase { connecting, handshaking, writing, reading } phase = Phase::connecting;
    std::size_t sent = 0;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    std::string in;          // received bytes the parser has not consumed yet
    bool got_bytes = false;  // any response byte on this request (then no transparent retry)
    bool reused = false;
    std::uint64_t seq = 0;   // request number: completions of an older request's waits/timer are ignored
    char peek_byte = 0;

    Conn(std::shared_ptr<Impl> o, std::string k, bool use_tls, std::shared_ptr<const Bytes> pin)
        : owner(std::move(o)), key(std::move(k)), pinned_der(std::move(pin)), tls(use_tls),
          strand(net::make_strand(owner->io)), sock(strand), deadline(strand) {}

    void close_now() {
      error_code ec;
      ssl.reset();
      sock.close(ec);
      connected = false;
    }

    bool active(std::uint64_t s) const { return s == seq && static_cast<bool>(p.done); }

    // Runs on the strand.
    void start(Pending req, bool was_idle) {
      p = std::move(req);
      reused = was_idle;
      ++seq;
      sent = 0;
      got_bytes = false;
      in.clear();
      deadline.expires_after(p.timeout);
      deadline.async_wait([self = shared_from_this(), s = seq](const error_code& ec) {
        if (ec || !self->active(s)) return;
        self->fail("timeout");
      });
      if (connected) {
        phase = Phase::writing;
        return step();
      }
      phase = Phase::connecting;
      if (!owner->admit_open(shared_from_this())) return;   // queued: slot_granted() continues
      holds_open_slot = true;
      open();
    }

    void slot_granted() {
      holds_open_slot = true;
      if (!p.done || connected || phase != Phase::connecting) return release_open_slot();
      open();
    }

    void release_open_slot() {
      if (!holds_open_slot) return;
      holds_open_slot = false;
      owner->open_finished();
    }

    void open() {
      error_code ec;
      auto addr = net::ip::make_address(p.host, ec);
      if (!ec) return connect({tcp::endpoint(addr, p.port)});
      auto resolver = std::make_shared<tcp::resolver>(strand);
      resolver->async_resolve(p.host, std::to_string(p.port),
                              [self = shared_from_this(), s = seq, resolver](const error_code& rec,
                                                                             tcp::resolver::results_type r) {
                                if (!self->active(s)) return;
                                if (rec) return self->fail(error_text("resolve", rec));
                                std::vector<tcp::endpoint> eps;
                                for (auto& e : r) eps.push_back(e.endpoint());
                                self->connect(std::move(eps));
                              });
    }

    void connect(std::vector<tcp::endpoint> eps) {
      owner->opened.fetch_add(1, std::memory_order_relaxed);
      net::async_connect(sock, eps, [self = shared_from_this(), s = seq](const error_code& ec, const tcp::endpoint&) {
        if (!self->active(s)) return;
        if (ec) return self->fail(error_text("connect", ec));
        self->on_connected();
      });
    }

    void on_connected() {
      error_code ec;
      sock.set_option(tcp::no_delay(true), ec);
      sock.native_non_blocking(true, ec);
      if (ec) return fail(error_text("connect", ec));
      connected = true;
      if (!tls) {
        release_open_slot();
        phase = Phase::writing;
        return step();
      }
      ssl.reset(SSL_new(owner->ctx.native_handle()));
      if (!ssl || SSL_set_fd(ssl.get(), sock.native_handle()) != 1 ||
          SSL_set_ex_data(ssl.get(), pin_index(), const_cast<Bytes*>(pinned_der.get())) != 1)
        return fail("tls handshake: cannot set up the TLS session: " + ossl::last_error());
      SSL_set_connect_state(ssl.get());
      phase = Phase::handshaking;
      step();
    }

    // Readability is awaited with a 1-byte MSG_PEEK receive, not socket::async_wait: asio tries a receive
    // speculatively first, so readiness that another loop thread saw (edge-triggered epoll) between our EAGAIN
    // and this call is not lost. Whatever it reports (data, EOF, error), the next SSL_read/recv sees it.
    void wait_readable() {
      sock.async_receive(net::buffer(&peek_byte, 1), tcp::socket::message_peek,
                         [self = shared_from_this(), s = seq](const error_code& ec, std::size_t) {
                           if (!self->active(s)) return;
                           if (ec == net::error::operation_aborted) return self->fail("timeout");
                           self->step();
                         });
    }

    // asio adds EPOLLOUT only while a write wait is queued (epoll_ctl re-reports current writability): no race.
    void wait_writable() {
      sock.async_wait(tcp::socket::wait_write, [self = shared_from_this(), s = seq](const error_code& ec) {
        if (!self->active(s)) return;
        if (ec) return self->fail(error_text("write", ec));
        self->step();
      });
    }

    // Advances the request as far as the socket allows, then waits for readiness. Runs on the strand.
    void step() {
      for (;;) {
        switch (phase) {
          case Phase::connecting:
            return;
          case Phase::handshaking: {
            ERR_clear_error();
            const int r = SSL_do_handshake(ssl.get());
            if (r == 1) {
              release_open_slot();
              phase = Phase::writing;
              break;
            }
            const int e = SSL_get_error(ssl.get(), r);
            if (e == SSL_ERROR_WANT_READ) return wait_readable();
            if (e == SSL_ERROR_WANT_WRITE) return wait_writable();
            return fail(handshake_error(e));
          }
          case Phase::writing: {
            while (sent < p.wire.size()) {
              const std::size_t left = std::min<std::size_t>(p.wire.size() - sent, INT_MAX);
              if (ssl) {
                ERR_clear_error();
                const int r = SSL_write(ssl.get(), p.wire.data() + sent, static_cast<int>(left));
                if (r > 0) {
                  sent += static_cast<std::size_t>(r);
                  continue;
                }
                const int e = SSL_get_error(ssl.get(), r);
                if (e == SSL_ERROR_WANT_WRITE) return wait_writable();
                if (e == SSL_ERROR_WANT_READ) return wait_readable();
                return fail_io("write", tls_io_error(e));
              }
              const ssize_t r = ::send(sock.native_handle(), p.wire.data() + sent, left, MSG_NOSIGNAL);
              if (r >= 0) {
                sent += static_cast<std::size_t>(r);
                continue;
              }
              if (errno == EINTR) continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_writable();
              return fail_io("write", std::strerror(errno));
            }
            phase = Phase::reading;
            parser.emplace();
            parser->eager(true);
            parser->body_limit(kMaxResponseBody);
            if (p.head) parser->skip(true);
            break;
          }
          case Phase::reading: {
            thread_local std::unique_ptr<char[]> buf(new char[kReadChunk]);
            if (ssl) {
              ERR_clear_error();
              const int r = SSL_read(ssl.get(), buf.get(), static_cast<int>(kReadChunk));
              if (r > 0) {
                if (consume(buf.get(), static_cast<std::size_t>(r))) return;
                continue;
              }
              const int e = SSL_get_error(ssl.get(), r);
              if (e == SSL_ERROR_WANT_READ) return wait_readable();
              if (e == SSL_ERROR_WANT_WRITE) return wait_writable();
              if (e == SSL_ERROR_ZERO_RETURN) return on_eof(true);
              if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                return on_eof(false);
              return fail_io("read", tls_io_error(e));
            }
            const ssize_t r = ::recv(sock.native_handle(), buf.get(), kReadChunk, 0);
            if (r > 0) {
              if (consume(buf.get(), static_cast<std::size_t>(r))) return;
              continue;
            }
            if (r == 0) return on_eof(true);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_readable();
            return fail_io("read", std::strerror(errno));
          }
        }
      }
    }

    std::string tls_io_error(int e) const {
      if (e == SSL_ERROR_SYSCALL) return errno ? std::strerror(errno) : "connection closed";
      std::string s = ossl::last_error();
      return s.empty() ? "TLS error " + std::to_string(e) : s;
    }

    std::string handshake_error(int e) const {
      std::string msg = "tls handshake: " + tls_io_error(e);
      const long vr = SSL_get_verify_result(ssl.get());
      if (vr != X509_V_OK) msg += std::string(" (server certificate: ") + X509_verify_cert_error_string(vr) + ")";
      return msg;
    }

    // Feeds received bytes to the parser. True when the request is finished (completed or failed).
    bool consume(const char* data, std::size_t n) {
      got_bytes = true;
      std::string_view chunk(data, n);
      if (!in.empty()) {
        in.append(data, n);
        chunk = in;
      }
      std::size_t used = 0;
      while (!parser->is_done() && used < chunk.size()) {
        boost::beast::error_code ec;
        const std::size_t k = parser->put(net::buffer(chunk.data() + used, chunk.size() - used), ec);
        used += k;
        if (ec == bhttp::error::need_more) break;
        if (ec) {
          fail(error_text("read", ec));
          return true;
        }
        if (k == 0) break;
      }
      if (in.empty()) {
        in.assign(chunk.substr(used));
      } else {
        in.erase(0, used);
      }
      if (!parser->is_done()) return false;
      complete();
      return true;
    }

    void on_eof(bool clean) {
      if (reused && !got_bytes) return retry_fresh();
      // Only a body delimited by the close itself ends at EOF (never a response whose header is incomplete).
      // Over TLS that close may come without close_notify (HTTP/1.0 servers such as the Python agent 6.7): still
      // the end of such a body; a Content-Length body cut short stays an error, and the content is checked anyway
      // (JSON parsed, quote signature verified), so a truncation cannot pass for a valid answer.
      if (parser && parser->got_some() && parser->is_header_done() && in.empty()) {
        boost::beast::error_code ec;
        parser->put_eof(ec);
        if (!ec && parser->is_done()) return complete();
      }
      fail(std::string("read: ") + (clean ? "end of stream" : "stream truncated"));
    }

    void complete() {
      deadline.cancel();
      auto res = parser->release();
      parser.reset();
      ClientResponse out;
      out.status = static_cast<int>(res.result_int());
      out.reason = std::string(res.reason());
      out.body = std::move(res.body());
      for (const auto& f : res)
        out.headers[lower(std::string_view(f.name_string().data(), f.name_string().size()))] = std::string(f.value());
      const bool keep = res.keep_alive() && in.empty();
      std::string().swap(in);
      std::string().swap(p.wire);   // release the request while idle
      auto cb = std::move(p.done);
      p.done = nullptr;
      if (!keep || !owner->give_back(key, shared_from_this())) close_now();
      if (cb) cb(std::move(out), {});
    }

    void fail_io(const char* step_name, const std::string& why) {
      if (reused && !got_bytes) return retry_fresh();
      fail(std::string(step_name) + ": " + why);
    }

    // The peer closed the pooled connection while it was idle: start over on a fresh connection.
    void retry_fresh() {
      deadline.cancel();
      release_open_slot();
      close_now();
      auto fresh = std::make_shared<Conn>(owner, key, tls, pinned_der);
      Pending again = std::move(p);
      p.done = nullptr;
      net::post(fresh->strand, [fresh, again = std::move(again)]() mutable { fresh->start(std::move(again), false); });
    }

    void fail(std::string err) {
      deadline.cancel();
      release_open_slot();
      close_now();
      parser.reset();
      std::string().swap(in);
      auto cb = std::move(p.done);
      p = Pending{};
      if (cb) cb(std::nullopt, std::move(err));
    }
  };
};

AsyncClient::AsyncClient(loop::EventLoop& loop, AsyncClientOptions opts)
    : impl_(std::make_shared<Impl>(*static_cast<net::io_context*>(loop.native()), std::move(opts))) {}

AsyncClient::~AsyncClient() { impl_->shutdown(); }

void AsyncClient::request(const AsyncTarget& target, std::string method, std::string path_and_query,
                          std::string body, std::chrono::milliseconds timeout, AsyncDone done) {
  Impl::Pending req;
  req.host = target.host;
  req.port = target.port;
  req.timeout = timeout;
  req.done = std::move(done);
  req.head = method == "HEAD";
  std::string key = Impl::pool_key(target);
  auto conn = impl_->take_idle(key);
  const bool reused = conn != nullptr;
  if (!conn) {
    std::shared_ptr<const Bytes> pin;
    if (target.tls && !target.pinned_server_pem.empty()) {
      pin = std::make_shared<const Bytes>(pem_to_der(target.pinned_server_pem));
    }
    conn = std::make_shared<Impl::Conn>(impl_, std::move(key), target.tls, std::move(pin));
  }
  if (method.empty() || method.find_first_of(" \r\n") != std::string::npos || path_and_query.empty() ||
      path_and_query.find_first_of(" \r\n") != std::string::npos || has_crlf(target.host)) {
    // Never let a caller's string add header lines; answered through the strand like any other failure.
    net::post(conn->strand, [conn, req = std::move(req)]() mutable {
      if (req.done) req.done(std::nullopt, "bad request: method, target or host contains a space or line break");
      if (!conn->p.done && conn->connected) {
        if (!conn->owner->give_back(conn->key, conn)) conn->close_now();
      }
    });
    return;
  }
  // HTTP/1.1 keeps the connection alive by default: no Connection header needed.
  std::string& w = req.wire;
  w.reserve(method.size() + path_and_query.size() + target.host.size() + body.size() + 120);
  w += method;
  w += ' ';
  w += path_and_query;
  w += " HTTP/1.1\r\nHost: ";
  w += target.host;
  w += ':';
  w += std::to_string(target.port);
  w += "\r\nUser-Agent: keylime-cpp-verifier\r\n";
  if (!body.empty()) w += "Content-Type: application/json\r\n";
  if (!body.empty() || (method != "GET" && method != "HEAD" && method != "DELETE")) {
    w += "Content-Length: ";
    w += std::to_string(body.size());
    w += "\r\n";
  }
  w += "\r\n";
  w += body;
  // Always through the strand (never inline), so `done` never runs inside request().
  net::post(conn->strand, [conn, req = std::move(req), reused]() mutable { conn->start(std::move(req), reused); });
}

std::size_t AsyncClient::idle_connections() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->idle_count;
}

std::size_t AsyncClient::connections_opened() const { return impl_->opened.load(); }

}  // namespace kl::http
