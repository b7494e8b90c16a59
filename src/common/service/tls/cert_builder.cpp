#include "common/service/tls/cert_builder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

namespace kl::tls {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + ossl::last_error()); }

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  if (value.empty()) return;
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1)
    fail(std::string("cannot set certificate name field ") + field);
}

// Same subject fields upstream's keylime CA defaults to ([ca] cert_country etc.), so generated
// certificates look familiar to operators.
void fill_name(X509_NAME* name, const std::string& cn) {
  add_name_entry(name, "C", "US");
  add_name_entry(name, "CN", cn);
  add_name_entry(name, "ST", "MA");
  add_name_entry(name, "L", "Lexington");
  add_name_entry(name, "O", "MITLL");
  add_name_entry(name, "OU", "53");
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) fail(std::string("cannot build certificate extension ") + OBJ_nid2sn(nid));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) fail(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid));
}

// SANs are built as GENERAL_NAMEs rather than a config string so that a comma or colon in a
// configured name cannot smuggle in extra entries.
void add_sans(X509* cert, const std::vector<std::string>& sans) {
  if (sans.empty()) return;
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (names == nullptr) fail("out of memory");
  for (const auto& s : sans) {
    GENERAL_NAME* gn = nullptr;
    if (is_ip(s)) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(s.c_str());
      if (ip == nullptr) {
        GENERAL_NAMES_free(names);
        fail("invalid IP address in subject alternative names: " + s);
      }
      gn = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      ASN1_STRING_set(dns, s.data(), static_cast<int>(s.size()));
      gn = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    }
    sk_GENERAL_NAME_push(names, gn);
  }
  int ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
  GENERAL_NAMES_free(names);
  if (ok != 1) fail("cannot add subject alternative names");
}

}  // namespace

ossl::Pkey generate_rsa_key(int bits) {
  ossl::Pkey key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) fail("RSA key generation failed");
  return key;
}

ossl::X509Ptr issue_certificate(const CertSpec& spec, EVP_PKEY* key, X509* issuer_cert, EVP_PKEY* issuer_key) {
  ossl::X509Ptr cert(X509_new());
  if (!cert) fail("out of memory");
  X509_set_version(cert.get(), 2);

  // Random positive 63-bit serial: unique enough across independently generated CAs.
  unsigned char rnd[8];
  if (RAND_bytes(rnd, sizeof rnd) != 1) fail("RAND_bytes failed");
  rnd[0] &= 0x7f;
  ossl::Bn bn(BN_bin2bn(rnd, sizeof rnd, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) fail("cannot set serial");

  // Backdated a little so a peer with a slightly slow clock accepts a fresh certificate.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), spec.days, 0, nullptr);

  fill_name(X509_get_subject_name(cert.get()), spec.common_name);
  X509* issuer = issuer_cert ? issuer_cert : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1) fail("cannot set issuer");
  if (X509_set_pubkey(cert.get(), key) != 1) fail("cannot set public key");

  if (spec.is_ca) {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
  // For a self-signed certificate the SKI just added is the authority key id.
  add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  add_sans(cert.get(), spec.sans);

  EVP_PKEY* signer = issuer_key ? issuer_key : key;
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) fail("certificate signing failed");
  return cert;
}

std::string to_pem(X509* cert) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail("cannot encode certificate");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string to_pem(EVP_PKEY* key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("cannot encode private key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

ossl::X509Ptr load_certificate(const std::filesystem::path& file) {
  ossl::Bio bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) fail("cannot open certificate " + file.string());
  ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("cannot read PEM certificate " + file.string());
  return cert;
}

ossl::Pkey load_private_key(const std::filesystem::path& file, const std::string& password) {
  ossl::Bio bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) fail("cannot open private key " + file.string());
  ossl::Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr,
                                         password.empty() ? nullptr : const_cast<char*>(password.c_str())));
  if (!key) fail("cannot read PEM private key " + file.string());
  return key;
}

void write_file(const std::filesystem::path& file, const std::string& data, unsigned mode, bool exclusive) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  int fd = ::open(file.c_str(), flags, static_cast<mode_t>(mode));
  if (fd < 0) throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(errno));
  // The umask may have narrowed `mode`; an existing file (non-exclusive) keeps its old mode otherwise.
  ::fchmod(fd, static_cast<mode_t>(mode));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(err));
    }
    off += static_cast<std::size_t>(n);
  }
  int sync_rc = ::fsync(fd);
  int sync_err = errno;
  if (::close(fd) != 0 || sync_rc != 0)
    throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(sync_rc != 0 ? sync_err : errno));
}

}  // namespace kl::tls
