// Where the AMD certificates for a report come from (spec §5): an injectable interface, and the standard
// implementation backed by a local store directory (fully offline) plus, optionally, AMD's KDS reached through an
// injected HTTP GET function (so this core stays socket-free), with an on-disk cache and bounded retries.
//
// Store layout (spec §5.1; product directories use KDS spelling):
//   <store>/Milan/ark.pem  Milan/ask.pem  Milan/asvk.pem  Milan/crl.der  Milan/vlek_crl.der   (all optional)
//   <store>/Genoa/...  <store>/Turin/...
//   <store>/vcek/<Product>/<hwid-hex>/<tcb-key>.der       tcb-key as tcb_key(): bl03-tee00-snp08-uc115[-fmc01]
//   <store>/vlek/<Product>/<any name>.pem|.der           operator-supplied VLEKs (matched by extensions)
// Certificates may be PEM or DER in any of these files. ARKs are trust anchors: they are only ever read from the
// store (never from KDS or the agent) and must match a pinned SHA-256 fingerprint for their product.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/snp/product.hpp"
#include "common/attest/snp/tcb.hpp"
#include "common/attest/snp/vek_certificate.hpp"

namespace kl::snp {

// HTTP GET: body on 200, nullopt on any failure (network error, non-200). Retries are done by the caller.
using HttpGet = std::function<std::optional<Bytes>(const std::string& url)>;

struct KdsOptions {
  HttpGet get;                                      // required for online mode
  std::string base_url = "https://kdsintf.amd.com";
  std::filesystem::path cache_dir;                  // empty = no on-disk cache
  unsigned max_attempts = 3;                        // per URL, >= 1
  std::chrono::milliseconds initial_backoff{1000};  // doubled after each failed attempt (KDS rate-limits)
  std::function<void(std::chrono::milliseconds)> sleep;  // default std::this_thread::sleep_for; tests inject
};

// What identifies a VCEK/VLEK: product, kind, the hwID (lower-case hex of CHIP_ID, Turin: its first 8 bytes) and
// the REPORTED_TCB.
struct LeafQuery {
  Product product = Product::unknown;
  VekKind kind = VekKind::vcek;
  Bytes hw_id;
  TcbParts tcb;
};

// KDS URLs (spec §4.3); SPL values are two-digit zero-padded decimals as the PoC and Keylime send them.
std::string kds_vcek_url(const std::string& base_url, const LeafQuery& q);
std::string kds_cert_chain_url(const std::string& base_url, Product p, VekKind kind);
std::string kds_crl_url(const std::string& base_url, Product p, VekKind kind);
// Relative path of a VCEK inside a store or cache: vcek/<Product>/<hwid-hex>/<tcb-key>.der
std::filesystem::path vcek_store_path(const LeafQuery& q);

// SHA-256 fingerprints (lower-case hex of DER) of AMD's published ARKs, per product.
std::map<Product, std::vector<std::string>> amd_ark_pins();

// Loads one certificate (PEM first block, or DER); nullptr if the bytes are neither.
ossl::X509Ptr load_certificate(ByteView pem_or_der);
// Loads every certificate of a PEM bundle (or a single DER); empty if none.
std::vector<ossl::X509Ptr> load_certificates(ByteView pem_or_der);
std::string sha256_fingerprint(X509* cert);  // lower-case hex of SHA-256(DER)

class CertSource {
 public:
  virtual ~CertSource() = default;
  // The pinned ARK of `p`, or nullptr. Owned by the source.
  virtual X509* ark(Product p) const = 0;
  // ASK (kind vcek) or ASVK (kind vlek). Not trusted by itself: verify_report checks it under the ARK.
  virtual ossl::X509Ptr intermediate(Product p, VekKind kind) const = 0;
  // The VCEK/VLEK for the query, or nullptr. Not trusted by itself.
  virtual ossl::X509Ptr leaf(const LeafQuery& q) const = 0;
  // The product CRL (DER), or nullopt when none is available.
  virtual std::optional<Bytes> crl(Product p, VekKind kind) const = 0;
};

class StoreCertSource : public CertSource {
 public:
  struct Options {
    std::filesystem::path store_dir;  // may be empty (then everything comes from KDS, except ARKs: none)
    std::optional<KdsOptions> kds;    // nullopt = offline
    std::map<Product, std::vector<std::string>> ark_pins = amd_ark_pins();  // tests pin their own ARK
  };
  explicit StoreCertSource(Options opts);

  X509* ark(Product p) const override;
  ossl::X509Ptr intermediate(Product p, VekKind kind) const override;
  ossl::X509Ptr leaf(const LeafQuery& q) const override;
  std::optional<Bytes> crl(Product p, VekKind kind) const override;

  // Problems found while loading (unpinned ARK, unreadable file), for the service log.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Number of HTTP GET calls made so far (for tests of caching / retries).
  unsigned kds_requests() const;

 private:
  std::optional<Bytes> kds_fetch(const std::string& url, const std::filesystem::path& cache_rel) const;

  Options opts_;
  std::map<Product, ossl::X509Ptr> arks_;
  std::vector<std::string> warnings_;
  mutable std::mutex mu_;
  mutable unsigned kds_requests_ = 0;
};

}  // namespace kl::snp
