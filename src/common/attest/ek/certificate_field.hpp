// Certificate-valued registration fields (ekcert, iak_cert, idevid_cert, mtls_cert): decoding the
// encodings agents send and producing the DER that is stored (base64 DER in the database).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::ek {

struct CertificateField {
  ossl::X509Ptr leaf;
  std::vector<ossl::X509Ptr> chain;  // further certificates sent after the leaf (PEM blocks 2..n)
  Bytes leaf_der;                    // DER of the leaf as it will be stored (re-encoded if the input was not strict DER)
  bool strict_der = true;            // false if the received encoding was not canonical DER (e.g. unsorted SET OF)
};

// Accepts: PEM text (first block = leaf, later blocks = chain), base64 of DER, raw DER bytes.
// Throws kl::ParseError on anything else (garbage, truncated DER, trailing junk, > 64 KiB).
CertificateField decode_certificate_field(std::string_view text);

std::string to_pem(X509* cert);
Bytes to_der(X509* cert);
std::string subject_text(X509* cert);  // one-line RFC 2253-ish, for messages
std::string issuer_text(X509* cert);

// True iff the certificate's SubjectPublicKeyInfo equals `key`'s (DER comparison).
bool certificate_has_key(X509* cert, EVP_PKEY* key);

}  // namespace kl::ek
