// Minimal X.509 issuing for the keylime tls_dir and for tests: RSA keys, SHA-256 signatures.
// Kept apart from tls_dir.cpp so the file-layout policy and the certificate mechanics stay separate.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/attest/crypto/ossl.hpp"

namespace kl::tls {

struct CertSpec {
  std::string common_name;
  std::vector<std::string> sans;   // IP literals become iPAddress entries, anything else dNSName
  bool is_ca = false;
  int days = 365;
};

ossl::Pkey generate_rsa_key(int bits = 2048);

// Issues a certificate for `key` described by `spec`, signed by issuer_key under issuer_cert
// (both null: self-signed). Throws std::runtime_error on OpenSSL failure.
ossl::X509Ptr issue_certificate(const CertSpec& spec, EVP_PKEY* key, X509* issuer_cert, EVP_PKEY* issuer_key);

std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);   // unencrypted PKCS#8

ossl::X509Ptr load_certificate(const std::filesystem::path& file);
ossl::Pkey load_private_key(const std::filesystem::path& file, const std::string& password = "");

// Writes `data` to `file` with `mode`. exclusive: fail if the file exists (never overwrite).
void write_file(const std::filesystem::path& file, const std::string& data, unsigned mode, bool exclusive);

}  // namespace kl::tls
