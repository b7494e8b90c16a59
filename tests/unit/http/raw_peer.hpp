// Raw POSIX/OpenSSL peers for HTTP tests: they send bytes our own Client would never produce
// (garbage request lines, pipelined requests, TLS 1.1 hellos).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace kltest {

class RawSocket {
 public:
  explicit RawSocket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("raw connect failed");
  }
  ~RawSocket() { if (fd_ >= 0) ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  int fd() const { return fd_; }

  void send_all(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("raw send failed");
      off += static_cast<std::size_t>(n);
    }
  }

  // Reads until the peer closes, an error, or `timeout` passes. closed() tells which.
  std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    closed_ = false;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) { closed_ = true; return out; }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

  // Reads one response with a Content-Length body (what our server always sends).
  std::string read_response(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto hdr_end = pending_.find("\r\n\r\n");
      if (hdr_end != std::string::npos) {
        std::size_t body_len = 0;
        auto cl = lower(pending_.substr(0, hdr_end)).find("content-length:");
        if (cl != std::string::npos) body_len = std::stoul(pending_.substr(cl + 15));
        std::size_t total = hdr_end + 4 + body_len;
        if (pending_.size() >= total) {
          std::string out = pending_.substr(0, total);
          pending_.erase(0, total);
          return out;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) { closed_ = true; return {}; }
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }

  bool closed() const { return closed_; }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  int fd_ = -1;
  bool closed_ = false;
  std::string pending_;
};

// One TLS handshake with the protocol pinned to `version` (e.g. TLS1_1_VERSION).
// Returns empty on success, else the OpenSSL error text.
inline std::string tls_handshake_with_version(std::uint16_t port, int version) {
  RawSocket sock(port);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_max_proto_version(ctx, version);
  // Level 0 lets this client offer TLS 1.0/1.1 at all, so the refusal is the server's.
  SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, sock.fd());
  std::string err;
  if (SSL_connect(ssl) != 1) {
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    err = e ? buf : "handshake failed";
    ERR_clear_error();
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return err;
}

// A fresh private directory under /tmp, removed at scope end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kl-http-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kltest
