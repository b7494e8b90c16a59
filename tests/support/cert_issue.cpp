#include "support/cert_issue.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace kl::testing {
namespace {

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error(std::string("cannot build extension ") + OBJ_nid2sn(nid));
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

kl::ossl::X509Ptr new_cert(EVP_PKEY* key, const std::string& cn) {
  kl::ossl::X509Ptr cert(X509_new());
  if (!cert) throw std::runtime_error("X509_new failed");
  X509_set_version(cert.get(), 2);
  kl::ossl::Bn serial(BN_new());
  BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
  X509_set_pubkey(cert.get(), key);
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) throw std::runtime_error("X509_sign failed: " + kl::ossl::last_error());
}

}  // namespace

TestCa make_test_ca(const std::string& common_name) {
  TestCa ca;
  ca.key.reset(EVP_EC_gen("P-256"));
  if (!ca.key) throw std::runtime_error("EC key generation failed");
  ca.cert = new_cert(ca.key.get(), common_name);
  X509_set_issuer_name(ca.cert.get(), X509_get_subject_name(ca.cert.get()));
  add_ext(ca.cert.get(), ca.cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca.cert.get(), ca.cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(ca.cert.get(), ca.cert.get(), NID_subject_key_identifier, "hash");
  sign(ca.cert.get(), ca.key.get());
  return ca;
}

kl::ossl::X509Ptr issue_certificate(EVP_PKEY* subject_key, const std::string& common_name, EVP_PKEY* ca_key,
                                    X509* ca_cert, LeafKind kind) {
  auto cert = new_cert(subject_key, common_name);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert));
  add_ext(cert.get(), ca_cert, NID_basic_constraints, "critical,CA:FALSE");
  if (kind == LeafKind::ek) {
    add_ext(cert.get(), ca_cert, NID_key_usage,
            EVP_PKEY_base_id(subject_key) == EVP_PKEY_EC ? "critical,keyAgreement" : "critical,keyEncipherment");
  } else {
    add_ext(cert.get(), ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert.get(), ca_cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  // keyid only when the issuer has a subject key identifier (swtpm_localca's issuer may not).
  if (X509_get0_subject_key_id(ca_cert) != nullptr)
    add_ext(cert.get(), ca_cert, NID_authority_key_identifier, "keyid:always");
  sign(cert.get(), ca_key);
  return cert;
}

kl::Bytes cert_to_der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) throw std::runtime_error("i2d_X509 failed");
  kl::Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(cert, &p);
  return der;
}

std::string cert_to_pem(X509* cert) {
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw std::runtime_error("PEM_write_bio_X509 failed");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

kl::ossl::X509Ptr cert_from_der(kl::ByteView der) {
  const unsigned char* p = der.data();
  kl::ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert && p != der.data() + der.size()) cert.reset();  // trailing bytes: not exactly one certificate
  return cert;
}

std::string der_to_pem(kl::ByteView der) {
  auto cert = cert_from_der(der);
  if (!cert) throw std::runtime_error("not a DER certificate");
  return cert_to_pem(cert.get());
}

kl::ossl::Pkey read_private_key_pem(const std::string& path) {
  kl::ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) throw std::runtime_error("cannot open " + path);
  kl::ossl::Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("cannot read private key " + path + ": " + kl::ossl::last_error());
  return key;
}

kl::ossl::Pkey read_public_key_pem(const std::string& path) {
  kl::ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) throw std::runtime_error("cannot open " + path);
  kl::ossl::Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("cannot read public key " + path + ": " + kl::ossl::last_error());
  return key;
}

kl::ossl::X509Ptr read_cert_pem(const std::string& path) {
  kl::ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) throw std::runtime_error("cannot open " + path);
  kl::ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw std::runtime_error("cannot read certificate " + path + ": " + kl::ossl::last_error());
  return cert;
}

}  // namespace kl::testing
