// The keylime `tls_dir` (cv_ca / reg_ca): a small CA plus server and client certificates,
// created on demand the way upstream's `tls_dir = generate` does (wire-contract §5.3).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace kl::tls {

struct TlsDirRequest {
  std::filesystem::path dir;            // e.g. $KEYLIME_DIR/cv_ca
  bool generate = false;                // create CA + missing certs (tls_dir = generate)
  std::string server_ip;                // bind ip, put into server cert SANs
  std::vector<std::string> extra_sans;  // cert_subject_alternative_names (DNS names or IPs)
  bool with_client_cert = true;         // verifier also creates client-cert.crt/client-private.pem
  std::string ca_common_name = "Keylime Certificate Authority";
};

struct TlsFiles { std::filesystem::path ca_cert, server_cert, server_key, client_cert, client_key; };

// Creates (if generate) <dir>/cacert.crt, <dir>/ca-private.pem, server-cert.crt, server-private.pem,
// client-cert.crt, client-private.pem (RSA-2048 keys, SHA-256 signatures, unencrypted PKCS#8 PEM);
// keys 0600, directory 0700; never overwrites existing files. Without `generate` it only checks
// that the files exist. client_cert/client_key are left empty when !with_client_cert.
// Throws std::runtime_error with a clear message (which file, what failed).
TlsFiles ensure_tls_dir(const TlsDirRequest& req);

// ---- For tests and tools ------------------------------------------------------------------

struct IssuedFiles {
  std::filesystem::path ca_cert, ca_key;    // empty for make_self_signed
  std::filesystem::path cert, key;
};

// A fresh CA (CN = "<prefix> CA") and a leaf (CN = leaf_cn, SANs = sans, usable as TLS server
// and client) signed by it, written into `dir` as <prefix>-ca.crt, <prefix>-ca-private.pem,
// <prefix>-cert.crt, <prefix>-private.pem (existing files are overwritten).
IssuedFiles make_ca_and_leaf(const std::filesystem::path& dir, const std::string& prefix,
                             const std::string& leaf_cn, const std::vector<std::string>& sans = {"127.0.0.1"});

// A self-signed leaf (like the Rust agent's generated mTLS cert): <prefix>-cert.crt, <prefix>-private.pem.
IssuedFiles make_self_signed(const std::filesystem::path& dir, const std::string& prefix,
                             const std::string& cn, const std::vector<std::string>& sans = {"127.0.0.1"});

// Subject CN and SAN entries (IPs as text, DNS names) of a PEM certificate file; for checks and tests.
std::string certificate_common_name(const std::filesystem::path& cert_file);
std::vector<std::string> certificate_sans(const std::filesystem::path& cert_file);

}  // namespace kl::tls
