// A software TPM (swtpm, socket mode) for integration tests: fresh state in a temp dir, manufactured by
// swtpm_setup with an EK certificate issued by a private swtpm_localca CA (never the system-wide one).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace kl::testing {

class Swtpm {
 public:
  struct Options {
    bool ecc_ek = false;          // swtpm_setup --ecc: the EK certificate is for the ECC (P-256) EK
    bool create_ek_cert = true;   // --create-ek-cert --create-platform-cert
  };
  // Throws std::runtime_error with swtpm_setup's output on failure. (Two constructors rather than a `= {}`
  // default argument: GCC rejects a nested aggregate with member initializers as a default argument.)
  Swtpm();
  explicit Swtpm(Options opts);
  ~Swtpm();
  Swtpm(const Swtpm&) = delete;
  Swtpm& operator=(const Swtpm&) = delete;

  std::string tcti() const;                    // "swtpm:host=127.0.0.1,port=N"
  std::uint16_t server_port() const { return server_port_; }
  std::uint16_t ctrl_port() const { return ctrl_port_; }
  // Directory holding the local CA's issuer (intermediate) and root certificates (PEM, *.pem):
  // use it as the tenant's / registrar's tpm_cert_store.
  std::filesystem::path ca_store_dir() const;
  std::filesystem::path state_dir() const;
  std::string log() const;                     // swtpm's own log
  static bool available();                     // swtpm, swtpm_setup and swtpm_localca present

 private:
  TempDir dir_;
  std::uint16_t server_port_ = 0;
  std::uint16_t ctrl_port_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

}  // namespace kl::testing
