// The TPM vendor CA store (`[tenant] tpm_cert_store`) and EK / IAK / IDevID chain verification.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "common/attest/crypto/ossl.hpp"

namespace kl::ek {

// A directory of CA certificates (PEM, possibly several per file, or DER; any extension), loaded once.
// Unreadable files are skipped with a warning text collected in `warnings()`.
class TrustStore {
 public:
  TrustStore();  // empty: every verification fails with "trust store is empty"
  static TrustStore load_directory(const std::filesystem::path& dir);
  static TrustStore from_certificates(std::vector<ossl::X509Ptr> certs);  // for tests and SNP/Azure later

  std::size_t size() const;
  const std::vector<std::string>& warnings() const;

  // The CA certificates, in load order (owned by the store).
  const std::vector<ossl::X509Ptr>& certificates() const;
  // The same certificates as an OpenSSL store (built once; safe for concurrent verifications).
  X509_STORE* x509_store() const { return store_.get(); }

 private:
  void add(ossl::X509Ptr cert);

  std::vector<ossl::X509Ptr> certs_;
  std::vector<std::string> warnings_;
  ossl::X509Store store_;
};

struct ChainVerdict {
  bool trusted = false;
  std::string error;           // human text, empty when trusted
  std::string missing_issuer;  // issuer DN that could not be found, when that is the reason
};

// Verifies `leaf` up to a certificate in `store`, using `untrusted_intermediates` (e.g. sent after the leaf)
// as untrusted helpers. EK certificates often violate RFC 5280 in ways that must be tolerated: critical SAN with
// empty subject, unknown critical extensions (TPM-specific), EKU 2.23.133.8.1, basicConstraints absent on
// intermediates of some vendors, issuer DN encoded with a different string type than the CA's subject (match
// names canonically), RSA-3072 and ECC P-256/P-384 keys. Validity periods: EK certs often use 99991231235959Z;
// check time only when `check_time` is true.
ChainVerdict verify_chain(const TrustStore& store, X509* leaf,
                          const std::vector<ossl::X509Ptr>& untrusted_intermediates, bool check_time = false);

}  // namespace kl::ek
