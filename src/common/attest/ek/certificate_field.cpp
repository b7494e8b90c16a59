// Decoding of certificate-valued registration fields.
//
// Agents send certificates in three shapes (wire-contract §2.3): PEM text (the Rust agent sends the EK leaf
// followed by the EK CA chain read from NV 0x01c00100..0x01c001ff), base64 of DER (iak_cert / idevid_cert,
// the Python agent's ekcert), or raw DER. Vendor EK certificates are not always canonical DER (Nuvoton puts
// C, O and CN into one unsorted multi-valued RDN); OpenSSL parses those and keeps the signed TBS bytes exactly
// as received when re-encoding, so `leaf_der` stays signature-valid. That matches upstream Keylime HEAD, which
// stores the original bytes of such certificates (CertificateWrapper), and lets a later chain check succeed.
#include "common/attest/ek/certificate_field.hpp"

#include <openssl/pem.h>

#include <cctype>

#include "common/attest/ek/der_strictness.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::ek {
namespace {

constexpr std::size_t kMaxFieldSize = 64 * 1024;
constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

bool only_whitespace(std::string_view s) {
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// One complete DER certificate, nothing after it.
ossl::X509Ptr parse_der(ByteView der, const char* what) {
  if (der.empty()) throw ParseError(std::string(what) + ": empty certificate");
  const unsigned char* p = der.data();
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    ossl::last_error();  // clear the queue; the OpenSSL text adds nothing for the client
    throw ParseError(std::string(what) + ": not a valid X.509 certificate");
  }
  if (static_cast<std::size_t>(p - der.data()) != der.size())
    throw ParseError(std::string(what) + ": trailing data after the certificate");
  return cert;
}

// Splits PEM text into the DER of each CERTIFICATE block. Only whitespace may appear outside the blocks:
// anything else means the field is not what the agent was supposed to send.
std::vector<Bytes> split_pem(std::string_view text) {
  std::vector<Bytes> blocks;
  std::string_view rest = text;
  while (true) {
    auto b = rest.find(kBegin);
    if (b == std::string_view::npos) {
      if (!only_whitespace(rest)) throw ParseError("certificate: unexpected text outside PEM blocks");
      break;
    }
    if (!only_whitespace(rest.substr(0, b))) throw ParseError("certificate: unexpected text outside PEM blocks");
    rest.remove_prefix(b + kBegin.size());
    auto e = rest.find(kEnd);
    if (e == std::string_view::npos) throw ParseError("certificate: PEM block without END line");
    auto body = rest.substr(0, e);
    if (body.find("-----") != std::string_view::npos) throw ParseError("certificate: malformed PEM block");
    auto der = base64_decode_ignoring_whitespace(trim(body));
    if (!der || der->empty()) throw ParseError("certificate: PEM body is not valid base64");
    blocks.push_back(std::move(*der));
    rest.remove_prefix(e + kEnd.size());
  }
  if (blocks.empty()) throw ParseError("certificate: no PEM block");
  return blocks;
}

std::string name_text(const X509_NAME* name) {
  if (!name) return {};
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  // RFC 2253 order and escaping, but keep UTF-8 readable instead of \XX escapes.
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

Bytes pubkey_der(EVP_PKEY* key) {
  if (!key) return {};
  int n = i2d_PUBKEY(key, nullptr);
  if (n <= 0) return {};
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  if (i2d_PUBKEY(key, &p) != n) return {};
  return out;
}

}  // namespace

CertificateField decode_certificate_field(std::string_view text) {
  if (text.empty()) throw ParseError("certificate: empty value");
  if (text.size() > kMaxFieldSize) throw ParseError("certificate: larger than 64 KiB");

  std::vector<Bytes> ders;
  if (text.find(kBegin) != std::string_view::npos) {
    ders = split_pem(text);
  } else if (auto b64 = base64_decode_ignoring_whitespace(trim(text)); b64 && !b64->empty() &&
                                                                         (*b64)[0] == 0x30) {
    ders.push_back(std::move(*b64));
  } else if (static_cast<unsigned char>(text[0]) == 0x30) {
    ders.emplace_back(text.begin(), text.end());
  } else {
    throw ParseError("certificate: neither PEM, base64 of DER nor DER");
  }

  CertificateField f;
  f.leaf = parse_der(ders[0], "certificate");
  f.strict_der = is_strict_der_certificate(ders[0]);
  f.leaf_der = to_der(f.leaf.get());
  if (f.leaf_der.empty()) throw ParseError("certificate: cannot be re-encoded");
  for (std::size_t i = 1; i < ders.size(); ++i) f.chain.push_back(parse_der(ders[i], "chain certificate"));
  return f;
}

std::string to_pem(X509* cert) {
  if (!cert) return {};
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

Bytes to_der(X509* cert) {
  if (!cert) return {};
  int n = i2d_X509(cert, nullptr);
  if (n <= 0) return {};
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  if (i2d_X509(cert, &p) != n) return {};
  return out;
}

std::string subject_text(X509* cert) { return cert ? name_text(X509_get_subject_name(cert)) : std::string(); }
std::string issuer_text(X509* cert) { return cert ? name_text(X509_get_issuer_name(cert)) : std::string(); }

bool certificate_has_key(X509* cert, EVP_PKEY* key) {
  if (!cert || !key) return false;
  Bytes a = pubkey_der(X509_get0_pubkey(cert));
  Bytes b = pubkey_der(key);
  return !a.empty() && a == b;
}

}  // namespace kl::ek
