// The "verify" step for an SNP report (spec §6 steps 3-7): product, leaf certificate, chain to the pinned ARK with
// RSA-PSS, optional CRL, leaf extensions vs report, ECDSA P-384 signature. Cryptography only; policy (VMPL, debug,
// TCB minimums, measurements) is validate_report() in policy.hpp, the EK binding is ek_binding.hpp.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/vek_certificate.hpp"
#include "common/attest/snp/verdict.hpp"

namespace kl::snp {

// Memo of chains that verified (leaf DER SHA-256 + product + kind -> parsed leaf key, extensions, validity window),
// so repeated verifications of reports from one chip cost one ECDSA verification. Thread-safe; bounded (cleared when
// full). Validity times and CRLs are still evaluated on every call.
class ChainCache {
 public:
  struct Entry {
    ossl::Pkey vek_key;  // the leaf's P-384 key, ready for EVP_DigestVerify
    VekExtensions extensions;
    Bytes vek_der;
    std::string vek_sha256;
    // Intersection of the chain's validity periods (seconds since epoch), checked on every use.
    std::int64_t not_before = 0, not_after = 0;
    ossl::X509Ptr leaf, intermediate;  // kept for CRL checks
  };
  explicit ChainCache(std::size_t max_entries = 4096) : max_entries_(max_entries) {}
  std::shared_ptr<const Entry> find(const std::string& key) const;
  void put(const std::string& key, std::shared_ptr<const Entry> e);
  std::size_t size() const;

 private:
  std::size_t max_entries_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Entry>> entries_;
};

struct VerifyOptions {
  const CertSource* certs = nullptr;  // pinned ARKs and lookups; required
  // Certificates sent with the evidence (e.g. an extended-report certificate table), DER or PEM. Preferred over
  // the store; trusted only through the chain check.
  std::optional<Bytes> vek;
  std::optional<Bytes> intermediate;
  // For v2 reports, whose product is not encoded: the configured / stated product. If unset, the leaf's
  // productName decides, else each of `candidate_products` is tried until a chain verifies.
  std::optional<Product> product;
  std::vector<Product> candidate_products{Product::milan, Product::genoa};
  bool check_time = true;
  std::optional<std::chrono::system_clock::time_point> time;  // check time; default: now
  bool check_crl = false;
  bool crl_fail_open = false;  // with check_crl: a missing CRL passes instead of ERR_CRL_UNAVAILABLE
  // with check_crl: no CRL at all passes, but one that is present must parse, verify and be current (else
  // ERR_CRL_UNAVAILABLE) — "check the CRL when there is one". crl_fail_open also lets a bad CRL pass.
  bool crl_missing_ok = false;
  ChainCache* cache = nullptr;
};

struct VerifyResult : SnpVerdict {
  Product product = Product::unknown;
  std::optional<VekKind> vek_kind;
  Bytes vek_der;            // the leaf that verified (for storage)
  std::string vek_sha256;   // lower-case hex fingerprint of vek_der
  VekExtensions vek_extensions;
};

// `raw` is the exact report bytes `report` was parsed from (at least kReportSize; only [0, 0x2A0) is signed).
VerifyResult verify_report(const SnpReport& report, ByteView raw, const VerifyOptions& opts);

// --- the individual steps (each has its own tests)

// ECDSA P-384 / SHA-384 over raw[0, 0x2A0) with r, s from the report. SnpError::report_signature on failure.
SnpVerdict verify_report_signature(const SnpReport& report, ByteView raw, EVP_PKEY* vek_public_key);

// leaf <- intermediate <- ark: issuer names, signatures (RSA-PSS SHA-384 as AMD uses; whatever the certificate's
// signature algorithm says), ARK self-signature, CN of the intermediate ("SEV-<Product>" / "SEV-VLEK-<Product>"),
// leaf key EC P-384. With `time`: every certificate's validity contains it (SnpError::cert_expired otherwise).
SnpVerdict verify_amd_chain(X509* leaf, X509* intermediate, X509* ark, Product product, VekKind kind,
                            std::optional<std::chrono::system_clock::time_point> time);

// CRL (DER) signed by the ARK lists the intermediate's serial -> revoked; a CRL signed by the intermediate that
// lists the leaf's serial -> revoked. A CRL that does not parse or whose signature fails -> crl_unavailable.
// With `time`, a CRL whose nextUpdate is before it is also treated as unavailable.
SnpVerdict check_revocation(ByteView crl_der, X509* ark, X509* intermediate, X509* leaf,
                            std::optional<std::chrono::system_clock::time_point> time);

}  // namespace kl::snp
