// EK / IAK / IDevID certificate chain verification against `tpm_cert_store`.
//
// Vendor quirks tolerated, and why (checked against the certificates upstream ships in tpm_cert_store/ and
// upstream's own check, keylime/cert_utils.py verify_cert, which only matches issuer name + signature):
//  * The store mixes roots and intermediates, and several store intermediates chain to roots that are not in
//    it (IFX TPM EK Root CA is signed by the VeriSign TPM root; STM roots by GlobalSign). Every store
//    certificate is therefore a trust anchor (X509_V_FLAG_PARTIAL_CHAIN), as upstream accepts any store
//    certificate as the direct issuer.
//  * Intermediates the agent sends after the leaf (Rust agent: NV 0x01c00100..) are untrusted helpers only.
//  * TPM-specific extensions marked critical (e.g. Subject Directory Attributes 2.5.29.9 carrying the TPM
//    spec version, TCG SAN directoryName with an empty subject) are not understood by OpenSSL; we ignore
//    unhandled critical extensions (X509_V_FLAG_IGNORE_CRITICAL).
//  * The EK leaf carries EKU 2.23.133.8.1 (tcg-kp-EKCertificate) and keyUsage keyEncipherment only: no
//    purpose is set, so no TLS/EKU purpose check applies.
//  * Some vendor intermediates lack basicConstraints; OpenSSL 3 then calls them "invalid CA" even when their
//    keyUsage says keyCertSign. Tolerated when basicConstraints is absent and keyUsage is absent or includes
//    keyCertSign; an explicit CA:FALSE or a keyUsage without keyCertSign still fails, so an end-entity
//    certificate cannot act as an issuer.
//  * Issuer DNs encoded with a different string type than the CA's subject (PrintableString vs UTF8String),
//    different case/spacing, and Nuvoton's unsorted multi-valued RDN (C+O+CN in one SET) match because
//    OpenSSL compares names in canonical form (X509_NAME_cmp).
//  * EK validity often ends 99991231235959Z and some vendor CAs have expired while their TPMs are in use;
//    time is checked only on request (upstream never checks it).
//  * RSA 2048/3072/4096, ECC P-256/P-384, RSASSA-PKCS1-v1_5, RSASSA-PSS and ECDSA signatures, SHA-1 included
//    (old Infineon EK certificates): no security level is imposed on the chain (auth_level stays -1).
//  * Infineon's older intermediates carry an AKID naming the self-signed IFX root by issuer+serial while the
//    store holds the VeriSign-cross-signed certificate of the same key: an AKID disagreement does not exclude
//    an issuer whose key verifies the signature (TrustStore installs that issuer check, trust_store.cpp).
// Not tolerated: a broken signature, a name mismatch, keyUsage without keyCertSign on an issuer, path-length
// violations, a non-CA (CA:FALSE) issuer.
#include <openssl/x509v3.h>

#include "common/attest/ek/certificate_field.hpp"
#include "common/attest/ek/trust_store.hpp"

namespace kl::ek {
namespace {

int tolerate_vendor_quirks(int ok, X509_STORE_CTX* ctx) {
  if (ok) return ok;
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  switch (X509_STORE_CTX_get_error(ctx)) {
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
      return 1;
    case X509_V_ERR_INVALID_CA:
      // OpenSSL 3 demands basicConstraints CA:TRUE on every intermediate. Accept its absence when nothing
      // else says "not a CA": X509_get_key_usage() is all-ones when keyUsage is absent.
      return cert != nullptr && X509_get_ext_by_NID(cert, NID_basic_constraints, -1) < 0 &&
                     (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0
                 ? 1
                 : 0;
    default:
      return 0;
  }
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

}  // namespace

ChainVerdict verify_chain(const TrustStore& store, X509* leaf,
                          const std::vector<ossl::X509Ptr>& untrusted_intermediates, bool check_time) {
  ChainVerdict v;
  if (leaf == nullptr) {
    v.error = "no certificate to verify";
    return v;
  }
  if (store.size() == 0 || store.x509_store() == nullptr) {
    v.missing_issuer = issuer_text(leaf);
    v.error = "trust store is empty: issuer " + in_quotes(v.missing_issuer) + " of " + in_quotes(subject_text(leaf)) +
              " not found";
    return v;
  }

  ossl::X509Stack untrusted(sk_X509_new_null());
  if (!untrusted) throw std::bad_alloc();
  for (const auto& c : untrusted_intermediates) {
    if (!c) continue;
    X509_up_ref(c.get());
    if (sk_X509_push(untrusted.get(), c.get()) <= 0) {
      X509_free(c.get());
      throw std::bad_alloc();
    }
  }

  ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.x509_store(), leaf, untrusted.get()) != 1) {
    v.error = "cannot initialise certificate verification: " + ossl::last_error();
    return v;
  }
  unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_IGNORE_CRITICAL;
  if (!check_time) flags |= X509_V_FLAG_NO_CHECK_TIME;
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), flags);
  X509_STORE_CTX_set_verify_cb(ctx.get(), tolerate_vendor_quirks);

  const int rc = X509_verify_cert(ctx.get());
  if (rc == 1) {
    v.trusted = true;
    ossl::last_error();  // tolerated errors may have left entries on the queue
    return v;
  }

  const int err = X509_STORE_CTX_get_error(ctx.get());
  X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
  if (at == nullptr) at = leaf;
  const std::string subject = subject_text(at);
  switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      v.missing_issuer = issuer_text(at);
      v.error = "issuer " + in_quotes(v.missing_issuer) + " of certificate " + in_quotes(subject) +
                " not found in the trust store";
      break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      // A self-signed root was sent with the chain but is not one of ours: name it, it is what the
      // operator would have to add.
      v.missing_issuer = issuer_text(at);
      v.error = "certificate chain ends in root " + in_quotes(v.missing_issuer) + " which is not in the trust store";
      break;
    default:
      v.error = std::string(X509_verify_cert_error_string(err)) + " (certificate " + in_quotes(subject) + ", depth " +
                std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) + ")";
      break;
  }
  ossl::last_error();
  return v;
}

}  // namespace kl::ek
