// EK-certificate surrogates at registration (spec snp-surrogate.md §6, §7.5): an SEV-SNP report sent in `ekcert`
// (SVSM-vTPM) and an Azure CVM HCL report (in `ekcert` or `azure_hcl_report`). Owns what the checks need for the
// registrar's lifetime (AMD certificate source, chain cache, launch policy) and turns the pure core's verdicts
// (src/common/attest/snp, src/common/attest/azure) into a registration outcome: a reason for the 400, or the
// verified fields the agent record keeps.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/verdict.hpp"
#include "common/attest/snp/verify.hpp"
#include "registrar/registrar_config.hpp"

namespace kl::registrar {

struct SurrogateOutcome {
  snp::SnpError error = snp::SnpError::none;
  std::string reason;                       // "ERR_VMPL: report VMPL is 1, must be <= 0 ..." when failed
  std::vector<std::string> failed_checks;   // every failed check found (first = error), e.g. binding and debug
  nlohmann::json evidence;                  // on success: what the record keeps (surrogate_summary + extras)
  bool ok() const { return error == snp::SnpError::none; }
  std::string code() const { return std::string(snp::error_code(error)); }
};

class SurrogateVerifier {
 public:
  // `certs` overrides the certificate source built from settings (tests pin their own ARK); `clock` overrides
  // the chain validity check time (tests only; the registrar always checks at the current time).
  explicit SurrogateVerifier(SurrogateSettings settings, std::unique_ptr<snp::CertSource> certs = nullptr,
                             std::optional<std::chrono::system_clock::time_point> clock = std::nullopt);

  const SurrogateSettings& settings() const { return settings_; }
  // Problems found while loading the certificate store (for the service log).
  std::vector<std::string> warnings() const;
  // Products with a pinned ARK available ("Milan", ...); empty: every SNP report will be refused.
  std::vector<std::string> trusted_products() const;

  // SEV-SNP report (optionally followed by an extended-report certificate table) against ek_tpm as sent:
  // parse, verify (chain, CRL, extensions, signature), EK binding, launch policy.
  SurrogateOutcome check_snp(ByteView ekcert, ByteView ek_tpm) const;
  // Azure HCL report: parse, embedded SNP report verify + policy, runtime-data binding, HCLEkPub vs ek_tpm and
  // HCLAkPub vs aik_tpm / iak_tpm (recorded; required when the EK is not bound, see azure_allow_missing_hcl_ek).
  SurrogateOutcome check_hcl(ByteView hcl, ByteView ek_tpm, ByteView aik_tpm, ByteView iak_tpm) const;

 private:
  snp::VerifyOptions verify_options() const;

  SurrogateSettings settings_;
  std::unique_ptr<snp::CertSource> certs_;
  std::optional<std::chrono::system_clock::time_point> clock_;
  mutable snp::ChainCache cache_;
};

// HTTP GET for AMD's KDS through kl::http::Client (https with the system CA bundle, or http for a local mirror):
// body on 200, nullopt otherwise. Whatever it returns is verified under the pinned ARK before use.
snp::HttpGet kds_http_get();

}  // namespace kl::registrar
