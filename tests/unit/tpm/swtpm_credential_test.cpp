// The real proof for make_credential: a blob we build in software must be accepted by an actual TPM
// (swtpm) through tpm2_activatecredential, for RSA and ECC EKs created by tpm2_createek.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>

#include "common/attest/tpm/make_credential.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace kl;
namespace fs = std::filesystem;

namespace {

Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, ByteView data) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
}

bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// swtpm in socket mode with a fresh state directory. The swtpm TCTI talks to the control channel on
// port+1, so the two ports must be adjacent. The ChildProcess destructor stops swtpm.
class SocketSwtpm {
 public:
  explicit SocketSwtpm(const fs::path& dir) {
    for (int attempt = 0; attempt < 20 && !proc_; ++attempt) {
      const std::uint16_t port = testing::free_tcp_port();
      if (port >= 65535 || !port_free(static_cast<std::uint16_t>(port + 1))) continue;
      auto p = std::make_unique<testing::ChildProcess>(
          std::vector<std::string>{"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + dir.string(), "--server",
                                   "type=tcp,port=" + std::to_string(port) + ",bindaddr=127.0.0.1", "--ctrl",
                                   "type=tcp,port=" + std::to_string(port + 1) + ",bindaddr=127.0.0.1", "--flags",
                                   "not-need-init,startup-clear"},
          std::map<std::string, std::string>{}, dir / "swtpm.log");
      if (testing::wait_for_port(port, std::chrono::seconds(5)) && p->running()) {
        port_ = port;
        proc_ = std::move(p);
      }
    }
  }
  bool started() const { return proc_ != nullptr; }
  std::string tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }

 private:
  std::uint16_t port_ = 0;
  std::unique_ptr<testing::ChildProcess> proc_;
};

bool tools_present() {
  for (const char* exe : {"swtpm", "tpm2_createek", "tpm2_createak", "tpm2_activatecredential",
                          "tpm2_startauthsession", "tpm2_policysecret", "tpm2_flushcontext"})
    if (testing::find_executable(exe).empty()) return false;
  return true;
}

// Runs a tpm2-tools command in `dir` against the TPM; fails the test with its output on error.
void tpm2(const SocketSwtpm& tpm, const fs::path& dir, std::vector<std::string> argv) {
  // tpm2-tools resolves relative file names against the working directory, so pass absolute ones.
  for (auto& a : argv)
    if (a.rfind("@", 0) == 0) a = (dir / a.substr(1)).string();
  const auto r = testing::run_command(argv, {{"TPM2TOOLS_TCTI", tpm.tcti()}});
  INFO(argv[0] << " output: " << r.output);
  REQUIRE(r.status == 0);
}

}  // namespace

TEST_CASE("swtpm activates credentials made by make_credential", "[make_credential][swtpm]") {
  if (!tools_present()) {
    WARN("swtpm or tpm2-tools missing: the hardware proof of make_credential was NOT run");
    return;
  }
  for (const char* alg : {"rsa", "ecc"}) {
    DYNAMIC_SECTION("EK " << alg) {
      testing::TempDir dir;
      const fs::path state = dir.path() / "state";
      fs::create_directories(state);
      SocketSwtpm tpm(state);
      REQUIRE(tpm.started());
      const fs::path d = dir.path();

      tpm2(tpm, d, {"tpm2_createek", "-c", "@ek.ctx", "-G", alg, "-u", "@ek.pub"});
      tpm2(tpm, d, {"tpm2_createak", "-C", "@ek.ctx", "-c", "@ak.ctx", "-G", alg, "-u", "@ak.pub", "-n", "@ak.name"});
      // Without a resource manager the transient objects stay loaded; free the slots before activation.
      tpm2(tpm, d, {"tpm2_flushcontext", "-t"});

      const auto ek = tpm::parse_tpm2b_public(read_file(d / "ek.pub"));
      CHECK(ek.tpmt.type == (std::string(alg) == "rsa" ? TPM2_ALG_RSA : TPM2_ALG_ECC));
      const Bytes ak_name = read_file(d / "ak.name");
      // Our AK name computation must agree with the TPM's.
      CHECK(hex_encode(tpm::name_of(tpm::parse_tpm2b_public(read_file(d / "ak.pub")))) == hex_encode(ak_name));

      const std::string challenge = tpm::random_challenge();
      write_file(d / "blob", tpm::make_credential(ek, ak_name, as_bytes(challenge)));

      // The EK's authPolicy is PolicySecret(endorsement hierarchy).
      tpm2(tpm, d, {"tpm2_startauthsession", "--policy-session", "-S", "@session.ctx"});
      tpm2(tpm, d, {"tpm2_policysecret", "-S", "@session.ctx", "-c", "0x4000000B"});
      tpm2(tpm, d, {"tpm2_activatecredential", "-c", "@ak.ctx", "-C", "@ek.ctx", "-i", "@blob", "-o",
                    "@out.secret", "-P", "session:" + (d / "session.ctx").string()});
      tpm2(tpm, d, {"tpm2_flushcontext", "@session.ctx"});
      CHECK(as_string(read_file(d / "out.secret")) == challenge);

      // Negative control: the TPM refuses a blob bound to another AK name.
      Bytes wrong_name = ak_name;
      wrong_name.back() ^= 1;
      write_file(d / "blob2", tpm::make_credential(ek, wrong_name, as_bytes(challenge)));
      tpm2(tpm, d, {"tpm2_startauthsession", "--policy-session", "-S", "@s2.ctx"});
      tpm2(tpm, d, {"tpm2_policysecret", "-S", "@s2.ctx", "-c", "0x4000000B"});
      const auto r = testing::run_command({"tpm2_activatecredential", "-c", (d / "ak.ctx").string(), "-C",
                                           (d / "ek.ctx").string(), "-i", (d / "blob2").string(), "-o",
                                           (d / "out2.secret").string(), "-P", "session:" + (d / "s2.ctx").string()},
                                          {{"TPM2TOOLS_TCTI", tpm.tcti()}});
      INFO(r.output);
      CHECK(r.status != 0);
    }
  }
}
