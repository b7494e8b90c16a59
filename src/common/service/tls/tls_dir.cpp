#include "common/service/tls/tls_dir.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <stdexcept>
#include <system_error>

#include <openssl/x509v3.h>

#include "common/service/tls/cert_builder.hpp"

namespace kl::tls {
namespace fs = std::filesystem;

namespace {

constexpr unsigned kKeyMode = 0600;
constexpr unsigned kCertMode = 0644;
constexpr int kCaDays = 3650;    // upstream [ca] cert_ca_lifetime default
constexpr int kLeafDays = 365;   // upstream leaf lifetime

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A pair is either complete (keep it), absent (create it) or half there (refuse: we never
// overwrite, and a lone key or cert cannot be used).
bool pair_present(const fs::path& cert, const fs::path& key) {
  bool c = file_exists(cert), k = file_exists(key);
  if (c != k) {
    throw std::runtime_error("tls_dir: " + (c ? cert : key).string() + " exists but " + (c ? key : cert).string() +
                             " is missing; remove it or supply the pair");
  }
  return c;
}

void write_pair(const fs::path& cert_file, X509* cert, const fs::path& key_file, EVP_PKEY* key, bool exclusive) {
  write_file(key_file, to_pem(key), kKeyMode, exclusive);
  write_file(cert_file, to_pem(cert), kCertMode, exclusive);
}

void issue_leaf(const fs::path& cert_file, const fs::path& key_file, const CertSpec& spec, X509* ca_cert,
                EVP_PKEY* ca_key) {
  auto key = generate_rsa_key();
  auto cert = issue_certificate(spec, key.get(), ca_cert, ca_key);
  write_pair(cert_file, cert.get(), key_file, key.get(), true);
}

}  // namespace

TlsFiles ensure_tls_dir(const TlsDirRequest& req) {
  if (req.dir.empty()) throw std::runtime_error("tls_dir: no directory given");
  TlsFiles files;
  files.ca_cert = req.dir / "cacert.crt";
  files.server_cert = req.dir / "server-cert.crt";
  files.server_key = req.dir / "server-private.pem";
  if (req.with_client_cert) {
    files.client_cert = req.dir / "client-cert.crt";
    files.client_key = req.dir / "client-private.pem";
  }
  const fs::path ca_key_file = req.dir / "ca-private.pem";

  if (!req.generate) {
    std::string missing;
    for (const auto* p : {&files.ca_cert, &files.server_cert, &files.server_key, &files.client_cert, &files.client_key}) {
      if (!p->empty() && !file_exists(*p)) missing += (missing.empty() ? "" : ", ") + p->string();
    }
    if (!missing.empty()) throw std::runtime_error("tls_dir " + req.dir.string() + " is incomplete; missing: " + missing);
    return files;
  }

  std::error_code ec;
  if (!fs::exists(req.dir, ec)) {
    fs::create_directories(req.dir, ec);
    if (ec) throw std::runtime_error("tls_dir: cannot create " + req.dir.string() + ": " + ec.message());
    // Holds private keys: owner only.
    fs::permissions(req.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) throw std::runtime_error("tls_dir: cannot restrict " + req.dir.string() + ": " + ec.message());
  } else if (!fs::is_directory(req.dir, ec)) {
    throw std::runtime_error("tls_dir: " + req.dir.string() + " is not a directory");
  }

  const bool need_server = !pair_present(files.server_cert, files.server_key);
  const bool need_client = req.with_client_cert && !pair_present(files.client_cert, files.client_key);

  ossl::X509Ptr ca_cert;
  ossl::Pkey ca_key;
  if (!pair_present(files.ca_cert, ca_key_file)) {
    if (!need_server && !need_client) {
      throw std::runtime_error("tls_dir: " + files.ca_cert.string() +
                               " is missing but certificates exist; refusing to create a CA that did not sign them");
    }
    ca_key = generate_rsa_key();
    CertSpec spec{req.ca_common_name, {}, true, kCaDays};
    ca_cert = issue_certificate(spec, ca_key.get(), nullptr, nullptr);
    write_pair(files.ca_cert, ca_cert.get(), ca_key_file, ca_key.get(), true);
  } else if (need_server || need_client) {
    ca_cert = load_certificate(files.ca_cert);
    ca_key = load_private_key(ca_key_file);
  }

  if (need_server) {
    std::vector<std::string> sans;
    if (!req.server_ip.empty()) sans.push_back(req.server_ip);
    for (const auto& s : req.extra_sans)
      if (!s.empty()) sans.push_back(s);
    sans.push_back("server");  // upstream's leaf carries its name as a DNS SAN
    issue_leaf(files.server_cert, files.server_key, CertSpec{"server", sans, false, kLeafDays}, ca_cert.get(),
               ca_key.get());
  }
  if (need_client) {
    issue_leaf(files.client_cert, files.client_key, CertSpec{"client", {"client"}, false, kLeafDays}, ca_cert.get(),
               ca_key.get());
  }
  return files;
}

IssuedFiles make_ca_and_leaf(const fs::path& dir, const std::string& prefix, const std::string& leaf_cn,
                             const std::vector<std::string>& sans) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  IssuedFiles out{dir / (prefix + "-ca.crt"), dir / (prefix + "-ca-private.pem"), dir / (prefix + "-cert.crt"),
                  dir / (prefix + "-private.pem")};
  auto ca_key = generate_rsa_key();
  auto ca_cert = issue_certificate(CertSpec{prefix + " CA", {}, true, kCaDays}, ca_key.get(), nullptr, nullptr);
  write_pair(out.ca_cert, ca_cert.get(), out.ca_key, ca_key.get(), false);
  auto key = generate_rsa_key();
  auto cert = issue_certificate(CertSpec{leaf_cn, sans, false, kLeafDays}, key.get(), ca_cert.get(), ca_key.get());
  write_pair(out.cert, cert.get(), out.key, key.get(), false);
  return out;
}

IssuedFiles make_self_signed(const fs::path& dir, const std::string& prefix, const std::string& cn,
                             const std::vector<std::string>& sans) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  IssuedFiles out{{}, {}, dir / (prefix + "-cert.crt"), dir / (prefix + "-private.pem")};
  auto key = generate_rsa_key();
  auto cert = issue_certificate(CertSpec{cn, sans, false, kLeafDays}, key.get(), nullptr, nullptr);
  write_pair(out.cert, cert.get(), out.key, key.get(), false);
  return out;
}

std::string certificate_common_name(const fs::path& cert_file) {
  auto cert = load_certificate(cert_file);
  X509_NAME* name = X509_get_subject_name(cert.get());
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
  std::string out;
  if (len >= 0 && utf8) out.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::vector<std::string> certificate_sans(const fs::path& cert_file) {
  auto cert = load_certificate(cert_file);
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(ip);
      int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
      if (family != -1 && inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) out.emplace_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace kl::tls
