#include "cert_factory.hpp"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace kl::ektest {
namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("cert_factory: ") + what + ": " + ossl::last_error());
}

void add_conf_ext(X509* x, int nid, const char* value, X509* issuer = nullptr) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, value);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
}

void add_raw_ext(X509* x, const char* oid, bool critical, const Bytes& value) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  check(obj != nullptr, oid);
  ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(os, value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, critical ? 1 : 0, os);
  check(ext != nullptr, "extension");
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(os);
  ASN1_OBJECT_free(obj);
}

// TCG EK SAN: critical, one directoryName with TPM manufacturer / model / version.
void add_tpm_san(X509* x) {
  auto dn = make_name({{"2.23.133.2.1", "id:49465800", V_ASN1_UTF8STRING},
                       {"2.23.133.2.2", "SLB9670", V_ASN1_UTF8STRING},
                       {"2.23.133.2.3", "id:000D0006", V_ASN1_UTF8STRING}});
  GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
  GENERAL_NAME* gn = GENERAL_NAME_new();
  GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn.release());
  sk_GENERAL_NAME_push(gens, gn);
  check(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT) == 1, "SAN");
  GENERAL_NAMES_free(gens);
}

void append_len(Bytes& out, std::size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n < 0x100) {
    out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n < 0x10000) {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    throw std::runtime_error("cert_factory: too long");
  }
}

Bytes tlv(std::uint8_t tag, ByteView value) {
  Bytes out{tag};
  append_len(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

// First TLV inside the value of the TLV at the start of `der` (header sizes read, no validation: test input).
ByteView first_child(ByteView der) {
  std::size_t pos = 1;
  std::size_t len_len = (der[pos] & 0x80) ? (der[pos] & 0x7f) + 1 : 1;
  pos += len_len;
  ByteView inner = der.subspan(pos);
  std::size_t ipos = 1;
  std::size_t ilen = 0;
  if (inner[ipos] & 0x80) {
    std::size_t n = inner[ipos++] & 0x7f;
    for (std::size_t i = 0; i < n; ++i) ilen = (ilen << 8) | inner[ipos++];
  } else {
    ilen = inner[ipos++];
  }
  return inner.subspan(0, ipos + ilen);
}

const EVP_MD* digest_for(EVP_PKEY* key) {
  return EVP_PKEY_get_bits(key) == 384 ? EVP_sha384() : EVP_sha256();
}

}  // namespace

ossl::Pkey make_key(KeyKind kind) {
  EVP_PKEY* k = nullptr;
  switch (kind) {
    case KeyKind::rsa2048: k = EVP_RSA_gen(2048); break;
    case KeyKind::rsa3072: k = EVP_RSA_gen(3072); break;
    case KeyKind::p256: k = EVP_EC_gen("P-256"); break;
    case KeyKind::p384: k = EVP_EC_gen("P-384"); break;
  }
  check(k != nullptr, "keygen");
  return ossl::Pkey(k);
}

NamePtr make_name(const std::vector<NameEntry>& entries, bool multi_valued) {
  NamePtr name(X509_NAME_new());
  bool first = true;
  for (const auto& e : entries) {
    int set = (multi_valued && !first) ? -1 : 0;
    check(X509_NAME_add_entry_by_txt(name.get(), e.field.c_str(), e.type,
                                     reinterpret_cast<const unsigned char*>(e.value.data()),
                                     static_cast<int>(e.value.size()), -1, set) == 1,
          e.field.c_str());
    first = false;
  }
  return name;
}

ossl::X509Ptr make_cert(const CertSpec& s) {
  ossl::X509Ptr x(X509_new());
  check(x != nullptr, "X509_new");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), s.serial);
  X509_set_subject_name(x.get(), s.subject);
  X509_set_issuer_name(x.get(), s.issuer ? s.issuer : s.subject);
  X509_time_adj_ex(X509_getm_notBefore(x.get()), s.not_before_days, 0, nullptr);
  if (s.not_after_9999)
    check(ASN1_TIME_set_string(X509_getm_notAfter(x.get()), "99991231235959Z") == 1, "notAfter");
  else
    X509_time_adj_ex(X509_getm_notAfter(x.get()), s.not_after_days, 0, nullptr);
  X509_set_pubkey(x.get(), s.subject_key);

  if (s.basic_constraints) add_conf_ext(x.get(), NID_basic_constraints, s.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (s.key_usage) {
    const bool ec = EVP_PKEY_get_base_id(s.subject_key) == EVP_PKEY_EC;
    add_conf_ext(x.get(), NID_key_usage,
                 s.ca ? "critical,keyCertSign,cRLSign" : (ec ? "critical,keyAgreement" : "critical,keyEncipherment"));
  }
  if (s.ca) add_conf_ext(x.get(), NID_subject_key_identifier, "hash");
  if (s.akid_from) add_conf_ext(x.get(), NID_authority_key_identifier, "keyid:always,issuer:always", s.akid_from);
  if (s.ek_extensions) {
    add_conf_ext(x.get(), NID_ext_key_usage, "2.23.133.8.1");
    add_tpm_san(x.get());
  }
  if (s.unknown_critical_extension) {
    add_raw_ext(x.get(), "1.3.6.1.4.1.99999.1", true, Bytes{0x05, 0x00});
    // Subject Directory Attributes with tpmSpecification (family "2.0", level 0, revision 164), critical.
    add_raw_ext(x.get(), "2.5.29.9", true,
                Bytes{0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10, 0x31, 0x0e, 0x30, 0x0c,
                      0x0c, 0x03, 0x32, 0x2e, 0x30, 0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0xa4});
  }
  EVP_PKEY* signer = s.issuer_key ? s.issuer_key : s.subject_key;
  check(X509_sign(x.get(), signer, digest_for(signer)) > 0, "X509_sign");
  return x;
}

Chain make_chain(KeyKind kind, const std::string& tag) {
  Chain c;
  c.root_key = make_key(kind);
  c.inter_key = make_key(kind);
  c.leaf_key = make_key(kind);
  auto root_name = cn("Test " + tag + " EK Root CA");
  auto inter_name = cn("Test " + tag + " EK Intermediate CA");
  auto leaf_name = make_name({});
  c.root = make_cert({.subject = root_name.get(), .subject_key = c.root_key.get(), .serial = 1, .ca = true});
  c.inter = make_cert({.subject = inter_name.get(), .issuer = root_name.get(), .subject_key = c.inter_key.get(),
                       .issuer_key = c.root_key.get(), .serial = 2, .ca = true});
  // TCG EK profile: empty subject, identity in the critical SAN.
  c.leaf = make_cert({.subject = leaf_name.get(), .issuer = inter_name.get(), .subject_key = c.leaf_key.get(),
                      .issuer_key = c.inter_key.get(), .serial = 3, .ek_extensions = true, .not_after_9999 = true});
  return c;
}

ossl::X509Ptr dup(X509* c) {
  X509_up_ref(c);
  return ossl::X509Ptr(c);
}

Bytes der_of(X509* c) {
  int n = i2d_X509(c, nullptr);
  check(n > 0, "i2d_X509");
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  i2d_X509(c, &p);
  return out;
}

std::string pem_of(X509* c) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), c);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes tbs_of(X509* cert) {
  Bytes der = der_of(cert);
  ByteView t = first_child(der);
  return Bytes(t.begin(), t.end());
}

Bytes resign_tbs(ByteView tbs, const X509* like, EVP_PKEY* key) {
  const ASN1_BIT_STRING* sig = nullptr;
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(&sig, &alg, like);
  unsigned char* alg_der = nullptr;
  int alg_len = i2d_X509_ALGOR(alg, &alg_der);
  check(alg_len > 0, "i2d_X509_ALGOR");
  Bytes alg_bytes(alg_der, alg_der + alg_len);
  OPENSSL_free(alg_der);

  ossl::MdCtx md(EVP_MD_CTX_new());
  check(EVP_DigestSignInit(md.get(), nullptr, digest_for(key), nullptr, key) == 1, "DigestSignInit");
  std::size_t siglen = 0;
  check(EVP_DigestSign(md.get(), nullptr, &siglen, tbs.data(), tbs.size()) == 1, "DigestSign size");
  Bytes sig_bytes(siglen + 1, 0);
  check(EVP_DigestSign(md.get(), sig_bytes.data() + 1, &siglen, tbs.data(), tbs.size()) == 1, "DigestSign");
  sig_bytes.resize(siglen + 1);

  Bytes body(tbs.begin(), tbs.end());
  body.insert(body.end(), alg_bytes.begin(), alg_bytes.end());
  Bytes bits = tlv(0x03, sig_bytes);
  body.insert(body.end(), bits.begin(), bits.end());
  return tlv(0x30, body);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes read_binary_file(const std::string& path) {
  std::string s = read_text_file(path);
  return Bytes(s.begin(), s.end());
}

}  // namespace kl::ektest
