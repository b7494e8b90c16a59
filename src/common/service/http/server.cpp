// HTTP/1.1 server on Boost.Beast. One io_context, `threads` threads, one strand per
// connection; plain and TLS sessions share one template so the request path is written once.
#include "common/service/http/server.hpp"

#include <array>
#include <atomic>
#include <cctype>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "common/attest/crypto/ossl.hpp"
#include "common/service/http/json_response.hpp"

namespace kl::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
// After the last response on a connection we half-close and read what the client still
// sends, so the kernel does not answer unread data with a RST that would destroy our
// response (e.g. a 413 sent while the oversized body is still arriving).
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1 << 20;

std::string sanitize_request_id(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    if (out.size() >= 36) break;
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') out.push_back(c);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX sequences decoded; a malformed escape is kept literally ('+' is not a space in paths).
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string_view to_sv(beast::string_view v) { return {v.data(), v.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values from handlers must not be able to inject extra header lines.
std::string strip_crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '\r' && c != '\n') out.push_back(c);
  return out;
}

std::optional<PeerCertificate> peer_of(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  PeerCertificate peer;
  peer.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
  if (idx >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len >= 0 && utf8 != nullptr) peer.subject_cn.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
  }
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (bio && PEM_write_bio_X509(bio.get(), cert) == 1) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    if (len > 0) peer.pem.assign(data, static_cast<std::size_t>(len));
  }
  return peer;
}

// What every session needs; shared so that it outlives the sessions still in flight.
struct SharedState {
  Handler handler;
  std::size_t max_body_bytes;
  std::chrono::seconds idle_timeout;
  std::shared_ptr<PeerLimits> limits;  // mutable counters behind a const state
  // Requests between "read" and "response written", and whether the server is draining (shutdown()).
  mutable std::atomic<int> in_flight{0};
  mutable std::atomic<bool> draining{false};
};

// Counts one request as in flight for as long as it lives.
class InFlight {
 public:
  explicit InFlight(const SharedState& st) : st_(st) { st_.in_flight.fetch_add(1); }
  ~InFlight() { st_.in_flight.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  const SharedState& st_;
};

// Holds one of a peer's connection slots for the lifetime of its session.
class ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<PeerLimits> limits, std::string peer) : limits_(std::move(limits)), peer_(std::move(peer)) {}
  ~ConnectionSlot() {
    if (limits_) limits_->release_connection(peer_);
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

 private:
  std::shared_ptr<PeerLimits> limits_;
  std::string peer_;
};

// Refusals can come in floods: log the first and then at most one line per second.
void log_refusal(const std::string& what, const std::string& peer) {
  static std::atomic<std::int64_t> last{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t prev = last.load();
  if (now != prev && last.compare_exchange_strong(prev, now)) spdlog::warn("http: {} from {}", what, peer);
}

bool is_parse_error(const beast::error_code& ec) {
  if (ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) return false;
  return ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::short_read && ec != bhttp::error::body_limit;
}

template <bool Tls>
class Session : public std::enable_shared_from_this<Session<Tls>> {
  using Stream = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

 public:
  Session(tcp::socket&& socket, std::shared_ptr<const SharedState> state, std::shared_ptr<ssl::context> ctx,
          std::string remote, std::unique_ptr<ConnectionSlot> slot)
      : stream_(make_stream(std::move(socket), ctx)),
        state_(std::move(state)),
        ctx_(std::move(ctx)),
        remote_(std::move(remote)),
        slot_(std::move(slot)) {}

  void run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::on_run, this->shared_from_this()));
  }

 private:
  static Stream make_stream(tcp::socket&& socket, const std::shared_ptr<ssl::context>& ctx) {
    if constexpr (Tls) {
      return Stream(std::move(socket), *ctx);
    } else {
      return Stream(std::move(socket));
    }
  }

  auto& lowest() { return beast::get_lowest_layer(stream_); }

  void on_run() {
    if constexpr (Tls) {
      lowest().expires_after(state_->idle_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return;  // refused or broken handshake: nothing to answer, the socket closes
    if constexpr (Tls) peer_ = peer_of(stream_.native_handle());
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<std::uint64_t>(state_->max_body_bytes));
    lowest().expires_after(state_->idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, this->shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_error(ec);
    auto& msg = parser_->get();
    if (!state_->limits->allow_request(remote_)) {
      log_refusal("request rate limit exceeded (429)", remote_);
      Response r = json_envelope(429, nlohmann::json::object());
      r.headers.emplace_back("Retry-After", "1");
      return send(std::move(r), false, request_id_from_parser(), msg.version());
    }
    auto expect = msg[bhttp::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue")) {
      // curl waits for this before sending a large body.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = this->shared_from_this()](beast::error_code wec, std::size_t) {
                         if (wec) return;
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_read({}, 0);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  std::string request_id_from_parser() const {
    // Fields parsed before the error (e.g. an oversized Content-Length) are already present.
    if (!parser_) return {};
    return sanitize_request_id(to_sv(parser_->get()["X-Request-ID"]));
  }

  void on_error(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      Response r = json_envelope(413, nlohmann::json::object());
      return send(std::move(r), false, request_id_from_parser(), 11);
    }
    if (is_parse_error(ec)) {
      return send(empty_status(400), false, request_id_from_parser(), 11);
    }
    // end_of_stream, timeout, reset, TLS failures: the peer is gone or silent; just close.
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_error(ec);
    auto msg = parser_->release();
    parser_.reset();
    busy_.emplace(*state_);

    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = percent_decode(std::string_view(req.target).substr(0, q));
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& field : msg) {
      auto name = lower(to_sv(field.name_string()));
      auto [it, inserted] = req.headers.emplace(name, std::string(field.value()));
      if (!inserted) {
        // Repeated header lines are one comma-separated value (RFC 9110 §5.3).
        it->second += ", ";
        it->second += std::string(field.value());
      }
    }
    req.body = std::move(msg.body());
    req.tls = Tls;
    req.peer = peer_;
    req.remote_address = remote_;

    const std::string* rid = req.header("x-request-id");
    std::string request_id = rid ? sanitize_request_id(*rid) : std::string();
    // While draining, every response is the connection's last, so clients go elsewhere or retry.
    bool keep_alive = msg.keep_alive() && !state_->draining.load();
    bool head = msg.method() == bhttp::verb::head;

    Response res;
    try {
      res = state_->handler(req);
    } catch (const std::exception& e) {
      spdlog::error("http: handler failed for {} {}: {}", req.method, req.path, e.what());
      res = empty_status(500);
    } catch (...) {
      spdlog::error("http: handler failed for {} {}: unknown exception", req.method, req.path);
      res = empty_status(500);
    }
    send(std::move(res), keep_alive, request_id, msg.version(), head);
  }

  void send(Response r, bool keep_alive, const std::string& request_id, unsigned version, bool head = false) {
    int status = (r.status >= 100 && r.status <= 999) ? r.status : 500;
    res_ = {};
    res_.version(version == 10 ? 10 : 11);
    res_.result(static_cast<unsigned>(status));
    res_.reason(strip_crlf(r.reason.empty() ? reason_phrase(status) : r.reason));
    if (!r.content_type.empty()) res_.set(bhttp::field::content_type, strip_crlf(r.content_type));
    for (const auto& [name, value] : r.headers) {
      if (name.empty() || name.find_first_of("\r\n: ") != std::string::npos) continue;
      res_.insert(name, strip_crlf(value));
    }
    res_.set("X-Request-ID", request_id);
    res_.keep_alive(keep_alive);
    if (head) {
      res_.content_length(r.body.size());
    } else {
      res_.body() = std::move(r.body);
      res_.prepare_payload();
    }
    lowest().expires_after(state_->idle_timeout);
    bhttp::async_write(stream_, res_,
                       [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                         self->on_write(ec, keep_alive);
                       });
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    busy_.reset();
    if (ec) return;
    res_ = {};  // free the body now, not when the next response replaces it
    if (keep_alive) {
      if (buffer_.size() == 0) buffer_.shrink_to_fit();  // idle connections hold no buffer
      return do_read();
    }
    linger();
  }

  void linger() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return;
    lowest().expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerBytes) return;
                              self->drain();
                            });
  }

  Stream stream_;
  std::shared_ptr<const SharedState> state_;
  std::shared_ptr<ssl::context> ctx_;  // the SSL objects reference it
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::optional<PeerCertificate> peer_;
  std::string remote_;
  std::unique_ptr<ConnectionSlot> slot_;
  std::array<char, 256> drain_buf_{};
  std::size_t drained_ = 0;
  std::optional<InFlight> busy_;  // set while a request is being handled and answered
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor acceptor, std::shared_ptr<const SharedState> state,
           std::shared_ptr<ssl::context> ctx)
      : ioc_(ioc), acceptor_(std::move(acceptor)), retry_(ioc), state_(std::move(state)), ctx_(std::move(ctx)) {}

  void accept() {
    if (!acceptor_.is_open()) return;
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Typically EMFILE: back off briefly instead of spinning on the error.
      spdlog::warn("http: accept failed: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](beast::error_code wec) {
        if (!wec) self->accept();
      });
      return;
    }
    beast::error_code ignored;
    std::string remote;
    auto ep = socket.remote_endpoint(ignored);
    if (!ignored) remote = ep.address().to_string();
    if (!state_->limits->acquire_connection(remote)) {
      log_refusal("connection refused, per-peer connection limit reached", remote);
      socket.close(ignored);
      return accept();
    }
    auto slot = std::make_unique<ConnectionSlot>(state_->limits, remote);
    socket.set_option(tcp::no_delay(true), ignored);
    if (auto ctx = context()) {
      std::make_shared<Session<true>>(std::move(socket), state_, std::move(ctx), std::move(remote), std::move(slot))->run();
    } else {
      std::make_shared<Session<false>>(std::move(socket), state_, nullptr, std::move(remote), std::move(slot))->run();
    }
    accept();
  }

  std::shared_ptr<ssl::context> context() {
    std::lock_guard lk(ctx_mu_);
    return ctx_;
  }

 public:
  // New connections use `ctx`; sessions already running keep the context they started with.
  void set_context(std::shared_ptr<ssl::context> ctx) {
    std::lock_guard lk(ctx_mu_);
    ctx_ = std::move(ctx);
  }
  // Stops accepting; must run on the io_context (posted by Server::shutdown).
  void close() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  }

 private:
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<const SharedState> state_;
  std::mutex ctx_mu_;
  std::shared_ptr<ssl::context> ctx_;
};

std::shared_ptr<ssl::context> make_server_context(const TlsServerConfig& cfg) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!cfg.key_password.empty()) {
    ctx->set_password_callback([pw = cfg.key_password](std::size_t, ssl::context::password_purpose) { return pw; });
  }
  beast::error_code ec;
  ctx->use_certificate_chain_file(cfg.cert_file, ec);
  if (ec) throw std::runtime_error("cannot load server certificate '" + cfg.cert_file + "': " + ec.message());
  ctx->use_private_key_file(cfg.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load server key '" + cfg.key_file + "': " + ec.message());
  if (SSL_CTX_check_private_key(h) != 1)
    throw std::runtime_error("server key '" + cfg.key_file + "' does not match certificate '" + cfg.cert_file + "'");

  if (!cfg.trusted_client_ca_files.empty()) {
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    if (names == nullptr) throw std::runtime_error("out of memory building client CA list");
    for (const auto& f : cfg.trusted_client_ca_files) {
      ctx->load_verify_file(f, ec);
      if (ec || SSL_add_file_cert_subjects_to_stack(names, f.c_str()) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        throw std::runtime_error("cannot load trusted client CA '" + f + "': " +
                                 (ec ? ec.message() : ossl::last_error()));
      }
    }
    // Advertise the accepted CAs so clients holding several certificates pick the right one.
    SSL_CTX_set_client_CA_list(h, names);
    // Request but do not require (upstream CERT_OPTIONAL). A presented certificate that fails
    // verification aborts the handshake, exactly as Python's ssl module does.
    ctx->set_verify_mode(ssl::verify_peer);
    // Session resumption with client verification needs a session id context.
    static constexpr unsigned char kSid[] = "keylime-cpp";
    SSL_CTX_set_session_id_context(h, kSid, sizeof(kSid) - 1);
  }
  return ctx;
}

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  std::shared_ptr<const SharedState> state;
  std::unique_ptr<net::io_context> ioc;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::uint16_t> ports;
  std::vector<std::thread> threads;
  mutable std::mutex mu;

  void teardown() {
    if (ioc) ioc->stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
    listeners.clear();
    // Destroying the io_context destroys every pending handler, hence every session and socket.
    ioc.reset();
  }
};

Server::Server(ServerOptions opts, Handler handler) : impl_(std::make_unique<Impl>()) {
  auto st = std::make_shared<SharedState>();
  st->handler = std::move(handler);
  st->max_body_bytes = opts.max_body_bytes;
  st->idle_timeout = opts.idle_timeout;
  st->limits = std::make_shared<PeerLimits>(opts.peer_limits);
  impl_->state = std::move(st);
  impl_->opts = std::move(opts);
}

Server::~Server() { stop(); }

void Server::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->ioc) throw std::runtime_error("http server already started");
  unsigned nthreads = impl_->opts.threads == 0 ? 1 : impl_->opts.threads;
  impl_->ioc = std::make_unique<net::io_context>(static_cast<int>(nthreads));
  impl_->ports.clear();
  try {
    for (const auto& l : impl_->opts.listeners) {
      std::string where = l.address + ":" + std::to_string(l.port);
      std::shared_ptr<ssl::context> ctx;
      if (l.tls) ctx = make_server_context(*l.tls);
      beast::error_code ec;
      auto addr = net::ip::make_address(l.address, ec);
      if (ec) throw std::runtime_error("cannot listen on " + where + ": invalid address");
      tcp::endpoint ep(addr, l.port);
      tcp::acceptor acc(*impl_->ioc);
      acc.open(ep.protocol(), ec);
      if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
      if (!ec) acc.bind(ep, ec);
      if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
      if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
      impl_->ports.push_back(acc.local_endpoint().port());
      impl_->listeners.push_back(std::make_shared<Listener>(*impl_->ioc, std::move(acc), impl_->state, ctx));
    }
  } catch (...) {
    impl_->listeners.clear();
    impl_->ioc.reset();
    impl_->ports.clear();
    throw;
  }
  for (auto& l : impl_->listeners) l->accept();
  for (unsigned i = 0; i < nthreads; ++i) {
    impl_->threads.emplace_back([ioc = impl_->ioc.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          // A throwing completion handler must not take the whole service down.
          spdlog::error("http: io thread caught: {}", e.what());
        }
      }
    });
  }
}

std::vector<std::uint16_t> Server::bound_ports() const {
  std::lock_guard lock(impl_->mu);
  return impl_->ports;
}

void Server::stop() {
  if (!impl_) return;
  std::lock_guard lock(impl_->mu);
  impl_->teardown();
}

bool Server::shutdown(std::chrono::milliseconds grace) {
  if (!impl_) return true;
  std::lock_guard lock(impl_->mu);
  if (!impl_->ioc) return true;
  impl_->state->draining.store(true);
  for (auto& l : impl_->listeners) net::post(*impl_->ioc, [l] { l->close(); });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  bool drained = true;
  while (impl_->state->in_flight.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      drained = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->teardown();
  return drained;
}

int Server::in_flight() const { return impl_ ? impl_->state->in_flight.load() : 0; }

void Server::reload_tls() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->ioc) return;
  // Build every new context first: one bad file leaves all listeners on their old certificates.
  std::vector<std::shared_ptr<ssl::context>> fresh(impl_->opts.listeners.size());
  for (std::size_t i = 0; i < fresh.size(); ++i)
    if (impl_->opts.listeners[i].tls) fresh[i] = make_server_context(*impl_->opts.listeners[i].tls);
  for (std::size_t i = 0; i < fresh.size() && i < impl_->listeners.size(); ++i)
    if (fresh[i]) impl_->listeners[i]->set_context(std::move(fresh[i]));
}

}  // namespace kl::http
