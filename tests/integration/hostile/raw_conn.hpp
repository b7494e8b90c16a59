// A raw client for abuse tests: plain TCP or TLS (optionally with a client certificate), optionally bound to
// a chosen 127.0.0.x source address, sending bytes our own HTTP client would never produce and reading
// back one response (or noticing that the server closed the connection).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace hostile {

struct TlsOptions {
  std::string cert_file, key_file;  // empty: no client certificate
  std::string ca_file;              // empty: do not verify the server
};

struct Reply {
  int status = 0;          // 0: no (complete) response
  bool closed = false;     // the server closed the connection (EOF/reset) at some point
  std::string head, body;
};

// SSL_CTX shared by many connections of one kind (building one per connection is slow).
class TlsContext {
 public:
  explicit TlsContext(const TlsOptions& o) : ctx_(SSL_CTX_new(TLS_client_method())) {
    if (!ctx_) throw std::runtime_error("SSL_CTX_new failed");
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr) != 1) throw std::runtime_error("bad CA file");
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    }
    if (!o.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, o.cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("cannot load client certificate " + o.cert_file);
    }
  }
  ~TlsContext() { SSL_CTX_free(ctx_); }
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_;
};

class RawConn {
 public:
  // Connects to 127.0.0.1:port from `source` (e.g. "127.0.0.7"; empty: kernel's choice). With `tls`, runs the
  // handshake; handshake_ok() tells whether it succeeded (a refused client certificate fails here).
  RawConn(std::uint16_t port, const TlsContext* tls = nullptr, const std::string& source = "",
          std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    static const bool sigpipe_ignored = (std::signal(SIGPIPE, SIG_IGN), true);  // SSL_write to a closed peer
    (void)sigpipe_ignored;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (!source.empty()) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      if (inet_pton(AF_INET, source.c_str(), &src.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
        throw std::runtime_error("cannot bind source address " + source);
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      connect_failed_ = true;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval snd{5, 0};  // a server that stopped reading must not hang the test
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    if (tls) {
      ssl_ = SSL_new(tls->get());
      SSL_set_fd(ssl_, fd_);
      // Bounded handshake: the socket is blocking, so poll-guard with SO_RCVTIMEO.
      timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      // With TLS 1.3 a refused client certificate shows up only as an alert on the first read.
      handshake_ok_ = SSL_connect(ssl_) == 1;
      ERR_clear_error();
    } else {
      handshake_ok_ = true;
    }
  }
  ~RawConn() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return !connect_failed_; }
  bool handshake_ok() const { return !connect_failed_ && handshake_ok_; }
  int fd() const { return fd_; }

  // False when the server has already closed / reset the connection.
  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      long n;
      if (ssl_) {
        n = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
        if (n <= 0) { ERR_clear_error(); return false; }
      } else {
        n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
      }
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  void shutdown_write() {
    if (ssl_) SSL_shutdown(ssl_);
    ::shutdown(fd_, SHUT_WR);
  }

  // Reads one HTTP response (Content-Length framed, as our servers send) within `timeout`.
  Reply read_reply(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    Reply r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = pending_.substr(0, end);
        std::size_t len = 0;
        std::string lh = lower(head);
        auto cl = lh.find("\r\ncontent-length:");
        if (cl != std::string::npos) len = std::stoul(head.substr(cl + 17));
        if (pending_.size() >= end + 4 + len) {
          r.head = head;
          r.body = pending_.substr(end + 4, len);
          pending_.erase(0, end + 4 + len);
          if (head.rfind("HTTP/1.", 0) == 0 && head.size() >= 12) r.status = std::atoi(head.c_str() + 9);
          r.closed = closed_;
          return r;
        }
      }
      if (closed_ || !read_some(deadline)) {
        r.closed = closed_;
        return r;
      }
    }
  }

  // Waits until the server closes the connection (true) or `timeout` passes (false); data read is discarded.
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
      if (!read_some(deadline) && !closed_) return false;
    }
    return true;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  // False on timeout; sets closed_ on EOF/error.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    if (connect_failed_) { closed_ = true; return false; }
    char buf[16384];
    for (;;) {
      if (ssl_ && SSL_pending(ssl_) > 0) break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int pr = ::poll(&p, 1, static_cast<int>(left.count()));
      if (pr < 0) { closed_ = true; return false; }
      if (pr > 0) break;
    }
    long n;
    if (ssl_) {
      n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        int err = SSL_get_error(ssl_, static_cast<int>(n));
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) return true;
        closed_ = true;
        return false;
      }
    } else {
      n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) { closed_ = true; return false; }
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool connect_failed_ = false, handshake_ok_ = false, closed_ = false;
  std::string pending_;
};

}  // namespace hostile
