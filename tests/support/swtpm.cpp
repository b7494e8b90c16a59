#include "support/swtpm.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/attest/crypto/ossl.hpp"
#include "support/cert_issue.hpp"

namespace kl::testing {
namespace fs = std::filesystem;
namespace {

// NV index of the TCG low-range ECC NIST P-256 EK certificate (EK Credential Profile 2.x). swtpm_setup 0.7
// only provisions RSA-2048 and ECC P-384 certificates, so the fixture adds this one itself.
constexpr const char* kEccP256EkCertIndex = "0x01c0000a";

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool port_is_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void must(const CommandResult& r, const std::string& what) {
  if (r.status != 0) throw std::runtime_error(what + " failed (exit " + std::to_string(r.status) + "):\n" + r.output);
}

}  // namespace

bool Swtpm::available() {
  return !find_executable("swtpm").empty() && !find_executable("swtpm_setup").empty() &&
         !find_executable("swtpm_localca").empty();
}

Swtpm::Swtpm() : Swtpm(Options{}) {}

Swtpm::Swtpm(Options opts) {
  const fs::path root = dir_.path();
  const fs::path ca = root / "localca", state = root / "state", store = root / "tpm_cert_store";
  fs::create_directories(ca);
  fs::create_directories(state);
  fs::create_directories(store);

  // A private local CA: swtpm_localca creates root + issuer on first use in `statedir`.
  write_file(root / "swtpm-localca.conf", "statedir = " + ca.string() + "\nsigningkey = " + (ca / "signkey.pem").string() +
                                              "\nissuercert = " + (ca / "issuercert.pem").string() +
                                              "\ncertserial = " + (ca / "certserial").string() + "\n");
  write_file(root / "swtpm-localca.options",
             "--platform-manufacturer KeylimeCppTests\n--platform-version 2.1\n--platform-model swtpm\n");
  write_file(root / "swtpm_setup.conf", "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = " +
                                            (root / "swtpm-localca.conf").string() +
                                            "\ncreate_certs_tool_options = " + (root / "swtpm-localca.options").string() +
                                            "\nactive_pcr_banks = sha1,sha256\n");

  std::vector<std::string> setup = {"swtpm_setup", "--tpm2", "--tpmstate", state.string(), "--config",
                                    (root / "swtpm_setup.conf").string(), "--pcr-banks", "sha1,sha256", "--overwrite"};
  if (opts.create_ek_cert) {
    setup.insert(setup.end(), {"--create-ek-cert", "--create-platform-cert", "--lock-nvram"});
  }
  // swtpm_setup writes to $HOME/.config when it finds no config; pin XDG_CONFIG_HOME to our dir.
  must(run_command(setup, {{"XDG_CONFIG_HOME", root.string()}}), "swtpm_setup");

  if (opts.create_ek_cert) {
    fs::copy_file(ca / "issuercert.pem", store / "swtpm-localca-issuer.pem");
    fs::copy_file(ca / "swtpm-localca-rootca-cert.pem", store / "swtpm-localca-root.pem");
  }

  // Ports come from bind(0) then close; another process may grab one in between, so retry a few times.
  std::string last_log;
  for (int attempt = 0; attempt < 5 && !proc_; ++attempt) {
    // The swtpm TCTI derives the control port as server port + 1, so the pair must be adjacent.
    do {
      server_port_ = free_tcp_port();
    } while (server_port_ == 65535 || !port_is_free(static_cast<std::uint16_t>(server_port_ + 1)));
    ctrl_port_ = static_cast<std::uint16_t>(server_port_ + 1);
    const fs::path log = root / ("swtpm-" + std::to_string(attempt) + ".log");
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + state.string(), "--server",
                                 "type=tcp,port=" + std::to_string(server_port_) + ",bindaddr=127.0.0.1", "--ctrl",
                                 "type=tcp,port=" + std::to_string(ctrl_port_) + ",bindaddr=127.0.0.1", "--flags",
                                 "not-need-init,startup-clear", "--log", "file=" + (root / "swtpm-tpm.log").string()},
        std::map<std::string, std::string>{}, log);
    if (wait_for_port(server_port_, std::chrono::seconds(5)) && p->running()) {
      proc_ = std::move(p);
    } else {
      p->terminate();
      last_log = p->log();
    }
  }
  if (!proc_) throw std::runtime_error("swtpm did not start listening:\n" + last_log);

  if (opts.create_ek_cert && opts.ecc_ek) {
    // Provision the P-256 EK certificate at 0x01c0000a, as a TPM vendor would.
    const std::map<std::string, std::string> env = {{"TPM2TOOLS_TCTI", tcti()}};
    const fs::path pem = root / "ecc-p256-ek.pem", der_file = root / "ecc-p256-ek-cert.der";
    must(run_command({"tpm2_createek", "-c", (root / "ecc-p256-ek.ctx").string(), "-G", "ecc", "-u", pem.string(),
                      "-f", "pem"}, env),
         "tpm2_createek -G ecc");
    must(run_command({"tpm2_flushcontext", "-t"}, env), "tpm2_flushcontext");
    auto ca_key = read_private_key_pem(ca / "signkey.pem");
    auto ca_cert = read_cert_pem(ca / "issuercert.pem");
    auto ek_pub = read_public_key_pem(pem);
    auto cert = issue_certificate(ek_pub.get(), "swtpm ECC P-256 EK", ca_key.get(), ca_cert.get(), LeafKind::ek);
    const kl::Bytes der = cert_to_der(cert.get());
    write_file(der_file, kl::as_string(der));
    must(run_command({"tpm2_nvdefine", kEccP256EkCertIndex, "-C", "p", "-s", std::to_string(der.size()), "-a",
                      "ppwrite|ppread|ownerread|authread|no_da|platformcreate"}, env),
         "tpm2_nvdefine");
    must(run_command({"tpm2_nvwrite", kEccP256EkCertIndex, "-C", "p", "-i", der_file.string()}, env), "tpm2_nvwrite");
  }
}

Swtpm::~Swtpm() {
  if (proc_) proc_->terminate();
}

std::string Swtpm::tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(server_port_); }

fs::path Swtpm::ca_store_dir() const { return dir_.path() / "tpm_cert_store"; }

fs::path Swtpm::state_dir() const { return dir_.path() / "state"; }

std::string Swtpm::log() const { return read_file(dir_.path() / "swtpm-tpm.log"); }

}  // namespace kl::testing
