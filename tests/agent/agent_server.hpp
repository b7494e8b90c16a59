// The keylime agent's HTTP API (wire-contract §4, JSON shapes as rust-keylime's keylime-agent) served to the
// verifier and tenant, backed by a real TPM (TpmAgent over swtpm) or by a SoftwareTpm.
//
//   GET  /version
//   GET  /v{ver}/quotes/integrity?nonce&mask&partial&ima_ml_entry
//   GET  /v{ver}/quotes/identity?nonce
//   POST /v{ver}/keys/ukey    {"encrypted_key","auth_tag","payload"?}
//   POST /v{ver}/keys/vkey    {"encrypted_key"}            (the decrypted V is recorded)
//   GET  /v{ver}/keys/verify?challenge
//   POST /v{ver}/notifications/revocation {"msg","signature"} (recorded)
//   GET  /v{ver}/agent/info   (ver >= 2.2)
//
// PCR 16 binds the payload key as rust-keylime does: PCR16 = H(0^32 || H(pubkey PEM)) in sha256. A SoftwareTpm
// is reset + extended before every quote; a real TPM is extended ONCE when the AgentServer is built (TpmAgent
// offers no PCR_Reset), so a TPM must start with PCR 16 = 0 (a fresh swtpm) for the binding to hold.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/evidence_logs.hpp"
#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/service/http/message.hpp"
#include "support/temp_dir.hpp"

namespace kl::testing {

// Failure injection for tests (all off by default). Changed at any time, from any thread.
struct AgentHooks {
  std::optional<std::string> quote_nonce;   // quote this nonce instead of the one requested ("wrong nonce")
  bool tamper_quote = false;                // flip a bit of TPMS_ATTEST after signing
  bool swap_ak = false;                     // sign with another key of the AK's type instead of the AK
  int fail_quotes_with = 0;                 // non-zero: answer quote requests with this status (e.g. 500)
  std::optional<std::vector<std::string>> api_versions;   // override the supported versions (renegotiation)
};

// One agent's API: pure request -> response, no sockets (the AgentServer and the Fleet put it on listeners).
class AgentApi {
 public:
  using QuoteFn = std::function<QuoteEvidence(kl::ByteView nonce, const std::vector<unsigned>& pcrs)>;
  struct Config {
    std::string uuid;
    QuoteFn quote;                        // quotes the sha256 bank; PCR 16 must already hold the binding
    std::function<void()> before_quote;   // e.g. reset + extend PCR 16 (software TPM); may be empty
    kl::ByteView ak_tpm2b_public;         // borrowed: the AK (its type gives sign_alg, the swap key's type)
    kl::ByteView ek_tpm2b_public;         // borrowed: the EK (its type gives enc_alg)
    std::shared_ptr<kl::ossl::Pkey> payload_key;   // RSA key for U/V (shared by fleet agents)
    std::vector<std::string> api_versions = {"2.1", "2.2", "2.3", "2.4", "2.5", "2.6"};
    bool require_client_cert = false;     // answer 403 to requests that came without a verified client cert
  };
  explicit AgentApi(Config cfg);

  kl::http::Response handle(const kl::http::Request& req);

  // ---- hooks ----
  AgentHooks hooks() const;
  void set_hooks(AgentHooks h);
  void set_ima_log(std::string ascii_log);   // served as ima_measurement_list from entry ima_ml_entry on
  void append_ima_log(const std::string& line);   // one more line (a '\n' is added)
  std::string ima_log() const;
  void set_mb_log(kl::Bytes event_log);      // served (base64) as mb_measurement_list; empty: not sent
  void set_boottime(long long boottime);     // `boottime` in quote answers (rust-keylime sends the boot time)

  // ---- what the agent received ----
  std::optional<kl::Bytes> v_key() const;                 // last V from /keys/vkey
  std::optional<kl::Bytes> u_key() const;
  std::vector<nlohmann::json> revocations() const;        // bodies of /notifications/revocation, in order
  std::size_t quotes_served() const { return quotes_served_.load(); }
  // ima_ml_entry of every integrity quote request, in order (-1 when the request had none).
  std::vector<long long> ima_entries_requested() const;
  std::string payload_pubkey_pem() const { return pubkey_pem_; }

 private:
  kl::http::Response integrity(const kl::http::Request& req, const std::string& ver);
  kl::http::Response identity(const kl::http::Request& req, const std::string& ver);
  nlohmann::json quote_results(const std::string& nonce, std::uint32_t mask, const std::string& ver);

  Config cfg_;
  std::string pubkey_pem_;
  std::string sign_alg_, enc_base_;   // "rsassa"/"ecdsa", "rsa"/"ecc"
  unsigned enc_bits_ = 2048;
  unsigned ak_bits_ = 2048;
  kl::ossl::Pkey swap_key_;   // guarded by mu_, made on first use
  mutable std::mutex mu_;
  AgentHooks hooks_;
  std::string ima_log_;
  kl::Bytes mb_log_;
  long long boottime_ = 1764806400;
  std::vector<long long> ima_requests_;
  std::optional<kl::Bytes> u_, v_;
  std::vector<nlohmann::json> revocations_;
  std::atomic<std::size_t> quotes_served_{0};
};

struct AgentServerOptions {
  std::string uuid;
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;                  // 0: ephemeral (kept across stop()/start())
  bool mtls = true;                        // TLS with the agent's own self-signed certificate; false: plain HTTP
  std::string trusted_client_ca_file;      // verifier's cv_ca/cacert.crt: client certs must chain to it and are
                                           // then required; empty: client certificates are not asked for
  std::vector<std::string> api_versions = {"2.1", "2.2", "2.3", "2.4", "2.5", "2.6"};
};

class AgentServer {
 public:
  AgentServer(AgentServerOptions opts, TpmAgent& tpm);        // borrowed; PCR 16 extended once here
  AgentServer(AgentServerOptions opts, SoftwareAgent& agent);  // borrowed; quotes by an internal SoftwareTpm
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  void start();                  // listen (again, on the same port, after stop()); throws on bind failure
  void stop();                   // go down: close the listener and all connections
  bool running() const;
  std::uint16_t port() const;
  const std::string& mtls_cert_pem() const { return cert_pem_; }   // register this as mtls_cert ("" if !mtls)
  std::string mtls_cert_or_disabled() const { return opts_.mtls ? cert_pem_ : "disabled"; }

  AgentApi& api() { return *api_; }
  // PCR extend in the sha256 bank on whatever backs the quotes (makes a PCR value change).
  void pcr_extend(unsigned pcr, kl::ByteView sha256_digest);
  // A new IMA measurement: extends PCR 10 with its template hash and appends the line to the served log, as the
  // kernel does.
  void measure(const ImaLine& line);
  // Extends every event of a UEFI event log into its PCR and serves the log as mb_measurement_list.
  void measure_boot(const kl::Bytes& event_log);
  SoftwareTpm* software_tpm() { return soft_tpm_.get(); }   // nullptr for a real TPM

 private:
  void init_tls();
  AgentServerOptions opts_;
  TpmAgent* tpm_ = nullptr;
  std::mutex tpm_mu_;
  std::unique_ptr<SoftwareTpm> soft_tpm_;
  std::shared_ptr<kl::ossl::Pkey> payload_key_;
  kl::Bytes ak_pub_, ek_pub_;
  std::unique_ptr<AgentApi> api_;
  TempDir dir_;
  std::string cert_pem_;
  struct Running;
  std::unique_ptr<Running> server_;
  std::uint16_t bound_port_ = 0;
  mutable std::mutex server_mu_;
};

// RSA-OAEP (SHA-1, MGF1-SHA-1) encryption to a PEM public key, base64 — what the verifier/tenant send as
// encrypted_key. For tests.
std::string encrypt_for_agent(const std::string& pubkey_pem, kl::ByteView plaintext);

}  // namespace kl::testing
