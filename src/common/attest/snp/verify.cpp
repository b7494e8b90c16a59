#include "common/attest/snp/verify.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::snp {

namespace {

using Clock = std::chrono::system_clock;
using Crl = std::unique_ptr<X509_CRL, ossl::Deleter<X509_CRL_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, ossl::Deleter<ECDSA_SIG_free>>;

std::string cn_of(const X509_NAME* name) {
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::int64_t epoch_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string date_of(std::int64_t epoch) {
  std::time_t tt = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::int64_t to_epoch(Clock::time_point tp) {
  return std::chrono::duration_cast<std::chrono::seconds>(tp.time_since_epoch()).count();
}

bool signed_by(X509* cert, X509* issuer) {
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  bool ok = key && X509_verify(cert, key) == 1;
  ERR_clear_error();
  return ok;
}

bool is_p384(EVP_PKEY* key) {
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) return false;
  return std::string_view(group, len) == "secp384r1";
}

Bytes der_of(X509* c) {
  unsigned char* der = nullptr;
  int n = i2d_X509(c, &der);
  if (n <= 0) return {};
  Bytes b(der, der + n);
  OPENSSL_free(der);
  return b;
}

ossl::X509Ptr up_ref(X509* c) {
  if (c) X509_up_ref(c);
  return ossl::X509Ptr(c);
}

std::string kind_name(VekKind k) { return k == VekKind::vcek ? "VCEK" : "VLEK"; }

}  // namespace

std::shared_ptr<const ChainCache::Entry> ChainCache::find(const std::string& key) const {
  std::lock_guard lk(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second;
}

void ChainCache::put(const std::string& key, std::shared_ptr<const Entry> e) {
  std::lock_guard lk(mu_);
  if (entries_.size() >= max_entries_) entries_.clear();
  entries_[key] = std::move(e);
}

std::size_t ChainCache::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

SnpVerdict verify_report_signature(const SnpReport& report, ByteView raw, EVP_PKEY* key) {
  auto bad = [](std::string why) { return SnpVerdict::fail(SnpError::report_signature, std::move(why)); };
  if (raw.size() < kSignedRegionSize) return bad("report is shorter than its signed region");
  if (!key) return bad("no verification key");
  // r and s are little-endian, zero-extended to 72 bytes; OpenSSL wants them as BIGNUMs.
  ossl::Bn r(BN_lebin2bn(report.signature_r.data(), static_cast<int>(report.signature_r.size()), nullptr));
  ossl::Bn s(BN_lebin2bn(report.signature_s.data(), static_cast<int>(report.signature_s.size()), nullptr));
  EcdsaSig sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return bad("cannot build ECDSA signature");
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return bad("cannot encode ECDSA signature");
  Bytes der_sig(der, der + der_len);
  OPENSSL_free(der);
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  int rc = 0;
  if (ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key) == 1)
    rc = EVP_DigestVerify(ctx.get(), der_sig.data(), der_sig.size(), raw.data(), kSignedRegionSize);
  ERR_clear_error();
  if (rc != 1) return bad("ECDSA P-384 signature over the report does not verify with the VEK");
  return SnpVerdict::pass();
}

SnpVerdict verify_amd_chain(X509* leaf, X509* intermediate, X509* ark, Product product, VekKind kind,
                            std::optional<Clock::time_point> time) {
  auto invalid = [](std::string why) { return SnpVerdict::fail(SnpError::chain_invalid, std::move(why)); };
  if (!leaf || !intermediate || !ark) return SnpVerdict::fail(SnpError::vek_unavailable, "incomplete chain");
  const std::string pname(product_name(product));
  if (X509_NAME_cmp(X509_get_subject_name(ark), X509_get_issuer_name(ark)) != 0 || !signed_by(ark, ark))
    return invalid("ARK-" + pname + " is not self-signed");
  const std::string want_cn = (kind == VekKind::vcek ? "SEV-" : "SEV-VLEK-") + pname;
  const std::string int_cn = cn_of(X509_get_subject_name(intermediate));
  if (int_cn != want_cn) return invalid("intermediate CN is \"" + int_cn + "\", expected \"" + want_cn + "\"");
  if (X509_NAME_cmp(X509_get_issuer_name(intermediate), X509_get_subject_name(ark)) != 0 ||
      !signed_by(intermediate, ark))
    return invalid(want_cn + " is not signed by the pinned ARK-" + pname);
  if (X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(intermediate)) != 0 ||
      !signed_by(leaf, intermediate))
    return invalid(kind_name(kind) + " is not signed by " + want_cn);
  if (!is_p384(X509_get0_pubkey(leaf))) return invalid(kind_name(kind) + " key is not EC P-384");
  if (time) {
    std::int64_t t = to_epoch(*time);
    struct Named {
      const char* name;
      X509* cert;
    };
    for (auto [name, cert] : {Named{"ARK", ark}, Named{"ASK/ASVK", intermediate}, Named{"VCEK/VLEK", leaf}}) {
      std::int64_t nb = epoch_of(X509_get0_notBefore(cert)), na = epoch_of(X509_get0_notAfter(cert));
      if (t < nb)
        return SnpVerdict::fail(SnpError::cert_expired, std::string(name) + " is not valid before " + date_of(nb));
      if (t > na) return SnpVerdict::fail(SnpError::cert_expired, std::string(name) + " expired on " + date_of(na));
    }
  }
  return SnpVerdict::pass();
}

SnpVerdict check_revocation(ByteView crl_der, X509* ark, X509* intermediate, X509* leaf,
                            std::optional<Clock::time_point> time) {
  auto unavailable = [](std::string why) { return SnpVerdict::fail(SnpError::crl_unavailable, std::move(why)); };
  const unsigned char* p = crl_der.data();
  Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(crl_der.size())));
  ERR_clear_error();
  if (!crl || p != crl_der.data() + crl_der.size()) return unavailable("CRL does not parse as DER X.509 CRL");
  X509* issuer = nullptr;
  X509* subject = nullptr;
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ark)) == 0) {
    issuer = ark;
    subject = intermediate;
  } else if (intermediate &&
             X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(intermediate)) == 0) {
    issuer = intermediate;
    subject = leaf;
  } else {
    return unavailable("CRL is issued by neither the ARK nor the ASK");
  }
  int ok = X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer));
  ERR_clear_error();
  if (ok != 1) return unavailable("CRL signature does not verify");
  if (time) {
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    if (next && epoch_of(next) < to_epoch(*time)) return unavailable("CRL is stale (nextUpdate passed)");
  }
  X509_REVOKED* rev = nullptr;
  if (subject && X509_CRL_get0_by_serial(crl.get(), &rev, X509_get0_serialNumber(subject)) == 1)
    return SnpVerdict::fail(SnpError::revoked, (subject == intermediate ? std::string("ASK/ASVK") : std::string("VEK")) +
                                                   " serial is listed in the CRL");
  return SnpVerdict::pass();
}

namespace {

VerifyResult fail_result(SnpError e, std::string why, Product p) {
  VerifyResult r;
  r.error = e;
  r.reason = std::move(why);
  r.product = p;
  return r;
}

// Verification for one product hypothesis.
VerifyResult verify_for_product(const SnpReport& report, ByteView raw, const VerifyOptions& opts, Product product) {
  const std::string pname(product_name(product));
  SigningKey sk = report.signing_key();
  if (sk == SigningKey::none)
    return fail_result(SnpError::report_signature, "report is not signed (SIGNING_KEY = none)", product);
  const VekKind kind = sk == SigningKey::vcek ? VekKind::vcek : VekKind::vlek;
  X509* ark = opts.certs->ark(product);
  if (!ark) return fail_result(SnpError::vek_unavailable, "no pinned ARK for " + pname, product);
  std::optional<Clock::time_point> t;
  if (opts.check_time) t = opts.time ? *opts.time : Clock::now();

  // Leaf: the one sent with the evidence, else the store/cache/KDS.
  ossl::X509Ptr leaf;
  std::string cache_key;
  const std::string ark_fp_suffix = "|" + pname + "|" + kind_name(kind);
  if (opts.vek) {
    cache_key = hex_encode(crypto::digest(crypto::HashAlg::sha256, *opts.vek)) + ark_fp_suffix;
  }
  std::shared_ptr<const ChainCache::Entry> entry;
  if (opts.cache && !cache_key.empty()) entry = opts.cache->find(cache_key);
  if (!entry) {
    if (opts.vek) {
      leaf = load_certificate(*opts.vek);
      if (!leaf) return fail_result(SnpError::vek_unavailable, "the supplied VEK is not a certificate", product);
    } else {
      LeafQuery q;
      q.product = product;
      q.kind = kind;
      q.tcb = decode_tcb(report.reported_tcb, product);
      if (kind == VekKind::vcek) {
        if (report.chip_id_zero())
          return fail_result(SnpError::vek_unavailable, "CHIP_ID is masked and no VCEK was supplied", product);
        std::size_t n = uses_turin_tcb_layout(product) ? 8 : 64;
        q.hw_id.assign(report.chip_id.begin(), report.chip_id.begin() + n);
      }
      leaf = opts.certs->leaf(q);
      if (!leaf)
        return fail_result(SnpError::vek_unavailable,
                           kind_name(kind) + " for " + pname + " " + tcb_text(q.tcb) + " is not available", product);
      Bytes der = der_of(leaf.get());
      cache_key = hex_encode(crypto::digest(crypto::HashAlg::sha256, der)) + ark_fp_suffix;
      if (opts.cache) entry = opts.cache->find(cache_key);
    }
  }

  if (!entry) {
    // A certificate of the wrong kind would fail the chain under the other intermediate; name the real problem.
    VekExtensions ext;
    try {
      ext = parse_vek_extensions(leaf.get());
    } catch (const ParseError& pe) {
      return fail_result(SnpError::vek_mismatch, pe.what(), product);
    }
    if (ext.kind() && *ext.kind() != kind)
      return fail_result(SnpError::vek_mismatch,
                         "report is signed by a " + kind_name(kind) + " but the certificate is a " +
                             kind_name(*ext.kind()),
                         product);
    // Intermediate: the supplied one if it chains to the pinned ARK, else the source's.
    std::vector<ossl::X509Ptr> candidates;
    if (opts.intermediate)
      if (auto c = load_certificate(*opts.intermediate)) candidates.push_back(std::move(c));
    if (auto c = opts.certs->intermediate(product, kind)) candidates.push_back(std::move(c));
    if (candidates.empty())
      return fail_result(SnpError::vek_unavailable,
                         std::string(kind == VekKind::vcek ? "ASK" : "ASVK") + " for " + pname + " is not available",
                         product);
    SnpVerdict chain;
    X509* chosen = nullptr;
    for (auto& c : candidates) {
      chain = verify_amd_chain(leaf.get(), c.get(), ark, product, kind, t);
      if (chain.ok() || chain.error == SnpError::cert_expired) {
        chosen = c.get();
        break;
      }
    }
    if (!chain.ok()) return fail_result(chain.error, chain.reason, product);
    auto e = std::make_shared<ChainCache::Entry>();
    e->extensions = std::move(ext);
    e->vek_key.reset(X509_get_pubkey(leaf.get()));
    e->vek_der = der_of(leaf.get());
    e->vek_sha256 = hex_encode(crypto::digest(crypto::HashAlg::sha256, e->vek_der));
    e->not_before = 0;
    e->not_after = INT64_MAX;
    for (X509* c : {ark, chosen, leaf.get()}) {
      e->not_before = std::max(e->not_before, epoch_of(X509_get0_notBefore(c)));
      e->not_after = std::min(e->not_after, epoch_of(X509_get0_notAfter(c)));
    }
    e->intermediate = up_ref(chosen);
    e->leaf = std::move(leaf);
    entry = e;
    if (opts.cache) opts.cache->put(cache_key, entry);
  } else if (t) {
    std::int64_t now = to_epoch(*t);
    if (now < entry->not_before || now > entry->not_after) {
      // Name the certificate the way an uncached run would.
      auto v = verify_amd_chain(entry->leaf.get(), entry->intermediate.get(), ark, product, kind, t);
      return fail_result(v.ok() ? SnpError::cert_expired : v.error,
                         v.ok() ? "chain outside its validity period" : v.reason, product);
    }
  }

  if (opts.check_crl) {
    auto crl = opts.certs->crl(product, kind);
    if (!crl) {
      if (!opts.crl_fail_open && !opts.crl_missing_ok)
        return fail_result(SnpError::crl_unavailable, "no CRL available for " + pname, product);
    } else {
      auto v = check_revocation(*crl, ark, entry->intermediate.get(), entry->leaf.get(), t);
      if (!v.ok() && !(v.error == SnpError::crl_unavailable && opts.crl_fail_open))
        return fail_result(v.error, v.reason, product);
    }
  }

  if (auto m = match_vek_to_report(entry->extensions, report, product); !m.ok())
    return fail_result(m.error, m.reason, product);
  if (auto s = verify_report_signature(report, raw, entry->vek_key.get()); !s.ok())
    return fail_result(s.error, s.reason, product);

  VerifyResult ok;
  ok.product = product;
  ok.vek_kind = kind;
  ok.vek_der = entry->vek_der;
  ok.vek_sha256 = entry->vek_sha256;
  ok.vek_extensions = entry->extensions;
  return ok;
}

}  // namespace

VerifyResult verify_report(const SnpReport& report, ByteView raw, const VerifyOptions& opts) {
  if (!opts.certs) return fail_result(SnpError::vek_unavailable, "no certificate source configured", Product::unknown);
  if (raw.size() < kReportSize)
    return fail_result(SnpError::report_malformed, "raw report is shorter than 1184 bytes", Product::unknown);

  std::vector<Product> products;
  if (report.has_cpuid) {
    if (report.product == Product::unknown)
      return fail_result(SnpError::product_unknown,
                         "CPUID family/model " + std::to_string(report.cpuid_fam_id) + "/" +
                             std::to_string(report.cpuid_mod_id) + " is not a known SEV-SNP product",
                         Product::unknown);
    if (opts.product && *opts.product != report.product)
      return fail_result(SnpError::product_unknown,
                         "report CPUID says " + std::string(product_name(report.product)) + " but " +
                             std::string(product_name(*opts.product)) + " was expected",
                         report.product);
    products.push_back(report.product);
  } else if (opts.product) {
    products.push_back(*opts.product);
  } else {
    // v2: a chain already verified for the supplied certificate settles it (cheap, no certificate parsing);
    // else the supplied certificate's productName; otherwise try the candidates.
    if (opts.vek && opts.cache) {
      const std::string h = hex_encode(crypto::digest(crypto::HashAlg::sha256, *opts.vek));
      const std::string kind = report.signing_key() == SigningKey::vlek ? "VLEK" : "VCEK";
      for (Product p : {Product::milan, Product::genoa, Product::turin})
        if (opts.cache->find(h + "|" + std::string(product_name(p)) + "|" + kind)) {
          products.push_back(p);
          break;
        }
    }
    if (opts.vek && products.empty())
      if (auto c = load_certificate(*opts.vek)) {
        try {
          if (auto p = parse_vek_extensions(c.get()).product()) products.push_back(*p);
        } catch (const ParseError&) {
        }
        if (products.empty())
          if (auto p = product_from_name(cn_of(X509_get_issuer_name(c.get())))) products.push_back(*p);
      }
    if (products.empty()) {
      if (report.product != Product::unknown) products.push_back(report.product);
      for (Product p : opts.candidate_products)
        if (std::find(products.begin(), products.end(), p) == products.end()) products.push_back(p);
    }
  }
  if (products.empty())
    return fail_result(SnpError::product_unknown, "cannot determine the product of a v2 report", Product::unknown);

  std::optional<VerifyResult> first_failure;
  for (Product p : products) {
    VerifyResult r = verify_for_product(report, raw, opts, p);
    if (r.ok()) return r;
    // Keep the most telling failure: one where the certificates were at least found.
    if (!first_failure || (first_failure->error == SnpError::vek_unavailable && r.error != SnpError::vek_unavailable))
      first_failure = std::move(r);
  }
  return *first_failure;
}

}  // namespace kl::snp
