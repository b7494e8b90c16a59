// Minimal X.509 issuing for tests: a throwaway CA and leaf certificates (e.g. EK certificates for software
// agents, or the P-256 EK certificate the swtpm fixture provisions).
#pragma once
#include <string>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::testing {

struct TestCa {
  kl::ossl::Pkey key;
  kl::ossl::X509Ptr cert;
};
// Self-signed CA (EC P-256 key, CA:TRUE, keyCertSign), valid from yesterday for ten years.
TestCa make_test_ca(const std::string& common_name);

enum class LeafKind { ek, tls_server };
// A v3 leaf for `subject_key`, issued by (ca_key, ca_cert): EK -> keyUsage keyEncipherment (RSA) or
// keyAgreement (EC); tls_server -> digitalSignature,keyEncipherment + SAN IP:127.0.0.1. SHA-256 signature.
kl::ossl::X509Ptr issue_certificate(EVP_PKEY* subject_key, const std::string& common_name, EVP_PKEY* ca_key,
                                    X509* ca_cert, LeafKind kind);

kl::Bytes cert_to_der(X509* cert);
std::string cert_to_pem(X509* cert);
kl::ossl::X509Ptr cert_from_der(kl::ByteView der);   // nullptr when not a certificate
std::string der_to_pem(kl::ByteView der);             // throws std::runtime_error when not a certificate

kl::ossl::Pkey read_private_key_pem(const std::string& path);
kl::ossl::Pkey read_public_key_pem(const std::string& path);
kl::ossl::X509Ptr read_cert_pem(const std::string& path);

}  // namespace kl::testing
