// Loading `tpm_cert_store`. Upstream reads every *.pem in the directory and treats each certificate in it as
// a possible direct issuer of the EK certificate (keylime/tpm_ek_ca.py, cert_utils.verify_cert). Vendor
// bundles ship intermediates and roots side by side (Infineon, STMicro, Intel), some with more than one
// certificate per file, some as DER with a .cer/.crt name, so we accept any extension and both encodings.
#include "common/attest/ek/trust_store.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <new>
#include <system_error>

#include "common/attest/ek/certificate_field.hpp"

namespace kl::ek {
namespace {

constexpr std::uintmax_t kMaxFileSize = 1024 * 1024;  // a CA file is a few KiB; anything huge is a mistake

std::vector<ossl::X509Ptr> read_certificates(const std::string& content) {
  std::vector<ossl::X509Ptr> out;
  if (content.find("-----BEGIN") != std::string::npos) {
    ossl::Bio bio(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
    if (!bio) return out;
    // PEM_read_bio_X509 skips blocks that are not certificates (keys, CRLs) and stops at the end.
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(c);
    ossl::last_error();  // the expected "no start line" at the end of the data
    return out;
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(content.data());
  const unsigned char* end = p + content.size();
  // DER files may hold several certificates back to back.
  while (p < end) {
    X509* c = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (!c) {
      ossl::last_error();
      break;
    }
    out.emplace_back(c);
  }
  return out;
}

// Issuer matching for chain building. OpenSSL's default also requires the subject's Authority Key Identifier
// to agree with the candidate issuer; Infineon's older intermediates (IFX TPM EK Intermediate CA 01..08)
// carry an AKID naming the self-signed "IFX TPM EK Root CA" by issuer+serial (serial 03), while the store
// holds the VeriSign-cross-signed certificate of the same key (another serial). Upstream Keylime accepts by
// name and signature alone. So an AKID disagreement alone does not exclude a candidate whose key actually
// verifies the signature; everything else (name mismatch, keyUsage without keyCertSign) still does.
int issued_by(X509_STORE_CTX* /*ctx*/, X509* subject, X509* issuer) {
  const int err = X509_check_issued(issuer, subject);
  if (err == X509_V_OK) return 1;
  if (err != X509_V_ERR_AKID_SKID_MISMATCH && err != X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH) return 0;
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  const bool signed_by_key = key != nullptr && X509_verify(subject, key) == 1;
  ossl::last_error();
  return signed_by_key ? 1 : 0;
}

}  // namespace

void TrustStore::add(ossl::X509Ptr cert) {
  if (!cert) return;
  // X509_STORE_add_cert takes its own reference; a duplicate is not an error in OpenSSL 3.
  if (X509_STORE_add_cert(store_.get(), cert.get()) != 1) {
    warnings_.push_back("could not add certificate '" + subject_text(cert.get()) + "' to the store: " +
                        ossl::last_error());
    return;
  }
  certs_.push_back(std::move(cert));
}

TrustStore::TrustStore() : store_(X509_STORE_new()) {
  if (!store_) throw std::bad_alloc();
  X509_STORE_set_check_issued(store_.get(), issued_by);
}

TrustStore TrustStore::from_certificates(std::vector<ossl::X509Ptr> certs) {
  TrustStore ts;
  for (auto& c : certs) ts.add(std::move(c));
  return ts;
}

TrustStore TrustStore::load_directory(const std::filesystem::path& dir) {
  TrustStore ts = from_certificates({});
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    ts.warnings_.push_back("cannot read trust store directory " + dir.string() + ": " + ec.message());
    return ts;
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code fec;
    if (it->is_regular_file(fec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());  // deterministic order for messages and tests

  for (const auto& f : files) {
    std::error_code sec;
    auto size = std::filesystem::file_size(f, sec);
    if (sec) {
      ts.warnings_.push_back(f.string() + ": " + sec.message());
      continue;
    }
    if (size > kMaxFileSize) {
      ts.warnings_.push_back(f.string() + ": skipped, larger than 1 MiB");
      continue;
    }
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      ts.warnings_.push_back(f.string() + ": cannot be opened");
      continue;
    }
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      ts.warnings_.push_back(f.string() + ": read error");
      continue;
    }
    auto certs = read_certificates(content);
    if (certs.empty()) {
      ts.warnings_.push_back(f.string() + ": no certificate found");
      continue;
    }
    for (auto& c : certs) ts.add(std::move(c));
  }
  return ts;
}

std::size_t TrustStore::size() const { return certs_.size(); }
const std::vector<std::string>& TrustStore::warnings() const { return warnings_; }
const std::vector<ossl::X509Ptr>& TrustStore::certificates() const { return certs_; }

}  // namespace kl::ek
