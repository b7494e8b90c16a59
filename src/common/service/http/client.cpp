// Synchronous HTTP/1.1 client on Boost.Beast. Every step runs as an async operation on a private
// io_context with a deadline, because Beast's synchronous calls cannot time out.
#include "common/service/http/client.hpp"

#include <cctype>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "common/attest/crypto/ossl.hpp"

namespace kl::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::shared_ptr<ssl::context> make_client_context(const TlsClientConfig& cfg) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  beast::error_code ec;
  if (cfg.verify_server) {
    ctx->set_verify_mode(ssl::verify_peer);
    for (const auto& f : cfg.ca_files) {
      ctx->load_verify_file(f, ec);
      if (ec) throw std::runtime_error("cannot load trusted server CA '" + f + "': " + ec.message());
    }
    X509_STORE* store = SSL_CTX_get_cert_store(h);
    for (const auto& pem : cfg.pinned_server_pems) {
      ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
      int added = 0;
      while (true) {
        ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert) break;
        // A duplicate is not an error: the same agent cert may be pinned twice.
        if (X509_STORE_add_cert(store, cert.get()) != 1) ossl::last_error();
        ++added;
      }
      ossl::last_error();  // PEM_read_bio_X509 leaves "no start line" at the end of input
      if (added == 0) throw std::runtime_error("pinned server certificate is not a PEM certificate");
    }
    if (!cfg.pinned_server_pems.empty()) {
      // A pinned certificate is a trust anchor by itself, even when it is not self-signed.
      X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(h), X509_V_FLAG_PARTIAL_CHAIN);
    }
    if (cfg.ca_files.empty() && cfg.pinned_server_pems.empty()) {
      ctx->set_default_verify_paths(ec);
      if (ec) throw std::runtime_error("cannot load the system trust store: " + ec.message());
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  if (!cfg.key_password.empty()) {
    ctx->set_password_callback([pw = cfg.key_password](std::size_t, ssl::context::password_purpose) { return pw; });
  }
  if (!cfg.cert_file.empty()) {
    ctx->use_certificate_chain_file(cfg.cert_file, ec);
    if (ec) throw std::runtime_error("cannot load client certificate '" + cfg.cert_file + "': " + ec.message());
    const std::string& key = cfg.key_file.empty() ? cfg.cert_file : cfg.key_file;
    ctx->use_private_key_file(key, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load client key '" + key + "': " + ec.message());
    if (SSL_CTX_check_private_key(h) != 1)
      throw std::runtime_error("client key '" + key + "' does not match certificate '" + cfg.cert_file + "'");
  }
  return ctx;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

std::string_view to_sv(beast::string_view v) { return {v.data(), v.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct Client::Impl {
  std::string host;
  std::uint16_t port;
  ClientOptions opts;
  net::io_context ioc{1};
  std::shared_ptr<ssl::context> ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  std::string where() const { return host + ":" + std::to_string(port); }
  bool connected() const { return plain.has_value() || tls.has_value(); }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Starts an async operation and runs the io_context until it completes (the tcp_stream
  // deadline turns a stall into beast::error::timeout).
  template <class Initiate>
  beast::error_code wait(Initiate&& initiate) {
    beast::error_code result;
    initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void close() {
    if (connected()) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().socket().close(ignored);
    }
    tls.reset();
    plain.reset();
    buffer.clear();
    buffer.shrink_to_fit();
  }

  void connect(std::chrono::steady_clock::time_point deadline) {
    close();
    tcp::resolver::results_type endpoints;
    {
      tcp::resolver resolver(ioc);
      beast::error_code ec;
      // Names resolve synchronously (getaddrinfo cannot be given a deadline anyway).
      endpoints = resolver.resolve(host, std::to_string(port),
                                   is_ip_literal(host) ? tcp::resolver::numeric_host : tcp::resolver::flags(), ec);
      if (ec) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
    }
    if (ctx) tls.emplace(ioc, *ctx); else plain.emplace(ioc);
    lowest().expires_at(deadline);
    auto ec = wait([&](auto&& h) { lowest().async_connect(endpoints, h); });
    if (ec) {
      close();
      if (ec == beast::error::timeout) throw std::runtime_error("connect to " + where() + " timed out");
      throw std::runtime_error("connect to " + where() + " failed: " + ec.message());
    }
    beast::error_code ignored;
    lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (tls) {
      if (!is_ip_literal(host)) SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());
      ec = wait([&](auto&& h) { tls->async_handshake(ssl::stream_base::client, h); });
      if (ec) {
        std::string detail = ec.message();
        long vr = SSL_get_verify_result(tls->native_handle());
        if (vr != X509_V_OK) detail += std::string(" (server certificate: ") + X509_verify_cert_error_string(vr) + ")";
        close();
        if (ec == beast::error::timeout) throw std::runtime_error("TLS handshake with " + where() + " timed out");
        throw std::runtime_error("TLS handshake with " + where() + " failed: " + detail);
      }
    }
  }

  template <class F>
  beast::error_code with_stream(F&& f) {
    if (tls) return f(*tls);
    return f(*plain);
  }
};

Client::Client(std::string host, std::uint16_t port, ClientOptions opts) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->opts = std::move(opts);
  if (impl_->opts.tls) impl_->ctx = make_client_context(*impl_->opts.tls);
}

Client::~Client() { impl_->close(); }

ClientResponse Client::request(const std::string& method, const std::string& target, const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& content_type) {
  auto& d = *impl_;
  const auto deadline = std::chrono::steady_clock::now() + d.opts.timeout;

  bhttp::request<bhttp::string_body> req;
  auto verb = bhttp::string_to_verb(method);
  if (verb == bhttp::verb::unknown) req.method_string(method); else req.method(verb);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, d.host + ":" + std::to_string(d.port));
  req.set(bhttp::field::user_agent, "keylime-cpp");
  req.set(bhttp::field::accept, "*/*");
  if (!body.empty() && !content_type.empty()) req.set(bhttp::field::content_type, content_type);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(true);
  const bool head = verb == bhttp::verb::head;

  for (int attempt = 0;; ++attempt) {
    const bool reused = d.connected();
    if (!reused) d.connect(deadline);
    d.lowest().expires_at(deadline);
    auto ec = d.with_stream([&](auto& s) { return d.wait([&](auto&& h) { bhttp::async_write(s, req, h); }); });
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);  // IMA logs can be large; the deadline bounds the transfer
    parser.skip(head);
    if (!ec) {
      ec = d.with_stream([&](auto& s) { return d.wait([&](auto&& h) { bhttp::async_read(s, d.buffer, parser, h); }); });
    }
    if (ec) {
      d.close();
      // A kept-alive connection the server already closed fails before any response byte:
      // retry once on a fresh connection.
      if (reused && attempt == 0 && ec != beast::error::timeout && !parser.got_some()) continue;
      if (ec == beast::error::timeout) throw std::runtime_error("request to " + d.where() + " timed out");
      throw std::runtime_error("HTTP exchange with " + d.where() + " failed: " + ec.message());
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    out.reason = std::string(res.reason());
    for (const auto& f : res) {
      auto name = lower(to_sv(f.name_string()));
      auto [it, inserted] = out.headers.emplace(name, std::string(f.value()));
      if (!inserted) it->second += ", " + std::string(f.value());
    }
    if (!res.keep_alive()) d.close();
    out.body = std::move(res.body());
    return out;
  }
}

}  // namespace kl::http
