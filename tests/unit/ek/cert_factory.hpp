// Test-only X.509 factory for EK chain tests: keys of each EK algorithm, names with chosen string types,
// and certificates with the vendor quirks the chain verifier must tolerate (or must not).
#pragma once
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::ektest {

enum class KeyKind { rsa2048, rsa3072, p256, p384 };
ossl::Pkey make_key(KeyKind kind);

struct NameEntry {
  std::string field;  // "CN", "O", "C", ...
  std::string value;
  int type;           // V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, ...
};
// Each entry its own RDN, in order; with `multi_valued`, all entries in one RDN (as Nuvoton does).
using NamePtr = std::unique_ptr<X509_NAME, ossl::Deleter<X509_NAME_free>>;
NamePtr make_name(const std::vector<NameEntry>& entries, bool multi_valued = false);
inline NamePtr cn(const std::string& value) { return make_name({{"CN", value, V_ASN1_UTF8STRING}}); }

struct CertSpec {
  X509_NAME* subject = nullptr;
  X509_NAME* issuer = nullptr;  // defaults to subject (self-signed)
  EVP_PKEY* subject_key = nullptr;
  EVP_PKEY* issuer_key = nullptr;  // defaults to subject_key
  long serial = 1;
  bool ca = false;
  bool basic_constraints = true;  // emit basicConstraints (CA:TRUE / CA:FALSE)
  bool key_usage = true;          // emit keyUsage (keyCertSign,cRLSign for CAs; keyEncipherment for leaves)
  bool ek_extensions = false;     // EKU 2.23.133.8.1 + critical SAN dirName (TPM manufacturer/model/version)
  bool unknown_critical_extension = false;  // critical 1.3.6.1.4.1.99999.1 and critical 2.5.29.9
  long not_before_days = -1;      // relative to now
  long not_after_days = 3650;     // relative to now; ignored when `not_after_9999`
  bool not_after_9999 = false;    // 99991231235959Z, as TPM vendors do
  X509* akid_from = nullptr;      // add AKID keyid+issuer+serial taken from this certificate
};
ossl::X509Ptr make_cert(const CertSpec& spec);

// A complete CA -> intermediate -> EK leaf set for one key algorithm.
struct Chain {
  ossl::Pkey root_key, inter_key, leaf_key;
  ossl::X509Ptr root, inter, leaf;
};
Chain make_chain(KeyKind kind, const std::string& tag);

ossl::X509Ptr dup(X509* c);  // another reference to the same certificate
Bytes der_of(X509* c);
std::string pem_of(X509* c);

// Re-signs modified TBS bytes with `key` (RSA / EC, SHA-256) and wraps them in a Certificate, keeping the
// signature algorithm of `like`. Used to build encodings OpenSSL itself would never emit (unsorted SETs).
Bytes resign_tbs(ByteView tbs, const X509* like, EVP_PKEY* key);
// The DER of the TBSCertificate of `cert`, as signed.
Bytes tbs_of(X509* cert);

std::string read_text_file(const std::string& path);
Bytes read_binary_file(const std::string& path);

}  // namespace kl::ektest
