// A real keylime_registrar process for integration tests: temp KEYLIME_DIR, generated cv_ca-style TLS dir
// (tls_dir = generate), free ports, registrar.conf + tenant.conf written here.
#pragma once
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <sqlite3.h>

#include "common/service/http/client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace regitest {

inline std::filesystem::path registrar_binary() {
  return std::filesystem::path(KL_BINARY_DIR) / "keylime_registrar";
}

struct RegistrarOptions {
  std::filesystem::path tpm_cert_store;         // empty: a fresh empty directory
  std::string extra_config;                     // more [registrar] lines
  std::map<std::string, std::string> env;       // extra environment
};

class RunningRegistrar {
 public:
  explicit RunningRegistrar(RegistrarOptions o = {}) : opts_(std::move(o)) {
    port_ = kl::testing::free_tcp_port();
    tls_port_ = kl::testing::free_tcp_port();
    while (tls_port_ == port_) tls_port_ = kl::testing::free_tcp_port();
    if (opts_.tpm_cert_store.empty()) {
      opts_.tpm_cert_store = dir_.path() / "tpm_cert_store";
      std::filesystem::create_directories(opts_.tpm_cert_store);
    }
    std::ofstream(conf()) << "[registrar]\nip = 127.0.0.1\nport = " << port_ << "\ntls_port = " << tls_port_
                          << "\ntls_dir = generate\n" << opts_.extra_config << "\n";
    std::ofstream(dir_.path() / "tenant.conf") << "[tenant]\ntpm_cert_store = " << opts_.tpm_cert_store.string() << "\n";
    start();
  }

  void start() {
    std::map<std::string, std::string> env = opts_.env;
    env["KEYLIME_DIR"] = keylime_dir().string();
    env["KEYLIME_TENANT_CONFIG"] = (dir_.path() / "tenant.conf").string();
    std::filesystem::create_directories(keylime_dir());
    proc_ = std::make_unique<kl::testing::ChildProcess>(
        std::vector<std::string>{registrar_binary().string(), "-c", conf().string()}, env, dir_.path() / "registrar.log");
    if (!kl::testing::wait_for_port(tls_port_, std::chrono::seconds(20)) ||
        !kl::testing::wait_for_port(port_, std::chrono::seconds(5)))
      throw std::runtime_error("registrar did not start:\n" + proc_->log());
  }
  void stop() { proc_->terminate(); }
  int stop_and_status() {
    proc_->terminate();
    return proc_->wait();
  }

  std::filesystem::path keylime_dir() const { return dir_.path() / "kl"; }
  std::filesystem::path tls_dir() const { return keylime_dir() / "reg_ca"; }
  std::filesystem::path db_file() const { return keylime_dir() / "reg_data.sqlite"; }
  std::filesystem::path conf() const { return dir_.path() / "registrar.conf"; }
  std::string log() const { return proc_->log(); }
  pid_t pid() const { return proc_->pid(); }
  std::uint16_t port() const { return port_; }
  std::uint16_t tls_port() const { return tls_port_; }

  kl::http::Client plain_client() const { return kl::http::Client("127.0.0.1", port_); }
  // mTLS with the client certificate generated next to the server's (same CA).
  kl::http::Client admin_client() const {
    kl::http::TlsClientConfig t;
    t.cert_file = (tls_dir() / "client-cert.crt").string();
    t.key_file = (tls_dir() / "client-private.pem").string();
    t.ca_files = {(tls_dir() / "cacert.crt").string()};
    return kl::http::Client("127.0.0.1", tls_port_, kl::http::ClientOptions{t, std::chrono::milliseconds(10000)});
  }
  kl::http::Client tls_client(const std::string& cert = "", const std::string& key = "") const {
    kl::http::TlsClientConfig t;
    t.cert_file = cert;
    t.key_file = key;
    t.ca_files = {(tls_dir() / "cacert.crt").string()};
    return kl::http::Client("127.0.0.1", tls_port_, kl::http::ClientOptions{t, std::chrono::milliseconds(10000)});
  }

  // Every row of registrarmain as text, read with the SQLite API (for "database unchanged" checks).
  std::string dump_db() const {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_file().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return "<no database>";
    }
    std::string out;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT * FROM registrarmain ORDER BY agent_id", -1, &st, nullptr);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        out += std::string(sqlite3_column_name(st, i)) + "=" + (t ? reinterpret_cast<const char*>(t) : "NULL") + "|";
      }
      out += "\n";
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

 private:
  kl::testing::TempDir dir_;
  RegistrarOptions opts_;
  std::uint16_t port_ = 0, tls_port_ = 0;
  std::unique_ptr<kl::testing::ChildProcess> proc_;
};

}  // namespace regitest
