#include "agent/software_quote.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <tss2/tss2_mu.h>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/quote/pcr_blob.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/attest/tpm/signature.hpp"

namespace kl::testing {

kl::Bytes marshal_quote_attest(const AttestFields& f) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  if (f.qualified_signer.size() > sizeof a.qualifiedSigner.name) throw std::invalid_argument("name too long");
  a.qualifiedSigner.size = static_cast<UINT16>(f.qualified_signer.size());
  std::memcpy(a.qualifiedSigner.name, f.qualified_signer.data(), f.qualified_signer.size());
  if (f.extra_data.size() > sizeof a.extraData.buffer) throw std::invalid_argument("quote: nonce longer than 64 bytes");
  a.extraData.size = static_cast<UINT16>(f.extra_data.size());
  std::memcpy(a.extraData.buffer, f.extra_data.data(), f.extra_data.size());
  a.clockInfo.clock = f.clock;
  a.clockInfo.resetCount = f.reset_count;
  a.clockInfo.restartCount = f.restart_count;
  a.clockInfo.safe = f.safe ? TPM2_YES : TPM2_NO;
  a.firmwareVersion = f.firmware_version;
  auto& q = a.attested.quote;
  q.pcrSelect.count = 1;
  q.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
  q.pcrSelect.pcrSelections[0].sizeofSelect = 3;
  for (int i = 0; i < 3; ++i) q.pcrSelect.pcrSelections[0].pcrSelect[i] = static_cast<BYTE>(f.pcr_bitmap >> (8 * i));
  if (f.pcr_digest.size() > sizeof q.pcrDigest.buffer) throw std::invalid_argument("pcr digest too long");
  q.pcrDigest.size = static_cast<UINT16>(f.pcr_digest.size());
  std::memcpy(q.pcrDigest.buffer, f.pcr_digest.data(), f.pcr_digest.size());

  kl::Bytes out(sizeof(TPMS_ATTEST) + 64);
  size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, out.data(), out.size(), &off) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPMS_ATTEST_Marshal failed");
  out.resize(off);
  return out;
}

namespace {

// TPMT_SIGNATURE of a raw OpenSSL signature (DER ECDSA-Sig-Value or RSASSA-PKCS1-v1_5 bytes) made with `ak`.
kl::Bytes marshal_tpm_signature(EVP_PKEY* ak, const kl::Bytes& sig) {
  TPMT_SIGNATURE t{};
  t.signature.any.hashAlg = TPM2_ALG_SHA256;
  if (EVP_PKEY_get_base_id(ak) == EVP_PKEY_EC) {
    // DER ECDSA-Sig-Value -> r, s as unsigned big-endian integers, as the TPM reports them.
    const unsigned char* p = sig.data();
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (!es) throw std::runtime_error("sign_as_tpm: bad ECDSA signature");
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(es, &r, &s);
    const int bytes = (EVP_PKEY_get_bits(ak) + 7) / 8;
    t.sigAlg = TPM2_ALG_ECDSA;
    t.signature.ecdsa.hash = TPM2_ALG_SHA256;
    t.signature.ecdsa.signatureR.size = static_cast<UINT16>(bytes);
    t.signature.ecdsa.signatureS.size = static_cast<UINT16>(bytes);
    BN_bn2binpad(r, t.signature.ecdsa.signatureR.buffer, bytes);
    BN_bn2binpad(s, t.signature.ecdsa.signatureS.buffer, bytes);
    ECDSA_SIG_free(es);
  } else {
    t.sigAlg = TPM2_ALG_RSASSA;
    t.signature.rsassa.hash = TPM2_ALG_SHA256;
    if (sig.size() > sizeof t.signature.rsassa.sig.buffer) throw std::runtime_error("sign_as_tpm: RSA key too large");
    t.signature.rsassa.sig.size = static_cast<UINT16>(sig.size());
    std::memcpy(t.signature.rsassa.sig.buffer, sig.data(), sig.size());
  }
  kl::Bytes out(sizeof(TPMT_SIGNATURE));
  size_t off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&t, out.data(), out.size(), &off) != TSS2_RC_SUCCESS)
    throw std::runtime_error("Tss2_MU_TPMT_SIGNATURE_Marshal failed");
  out.resize(off);
  return out;
}

// EVP_PKEY_CTX ready to sign SHA-256 digests with `ak` (RSASSA-PKCS1-v1_5 or ECDSA).
kl::ossl::PkeyCtx make_sign_ctx(EVP_PKEY* ak) {
  kl::ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(ak, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1)
    throw std::runtime_error("sign_as_tpm: init failed: " + kl::ossl::last_error());
  return ctx;
}

kl::Bytes sign_digest(EVP_PKEY_CTX* ctx, kl::ByteView digest) {
  size_t len = 0;
  if (EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size()) != 1)
    throw std::runtime_error("sign_as_tpm: sizing failed: " + kl::ossl::last_error());
  kl::Bytes sig(len);
  if (EVP_PKEY_sign(ctx, sig.data(), &len, digest.data(), digest.size()) != 1)
    throw std::runtime_error("sign_as_tpm: signing failed: " + kl::ossl::last_error());
  sig.resize(len);
  return sig;
}

}  // namespace

kl::Bytes sign_as_tpm(EVP_PKEY* ak, kl::ByteView data) {
  auto ctx = make_sign_ctx(ak);
  return marshal_tpm_signature(ak, sign_digest(ctx.get(), kl::crypto::digest(kl::crypto::HashAlg::sha256, data)));
}

SoftwareTpm::SoftwareTpm(EVP_PKEY* ak, kl::ByteView ak_tpm2b_public)
    : ak_(ak), ak_name_(kl::tpm::name_of(kl::tpm::parse_tpm2b_public(ak_tpm2b_public))) {}

void SoftwareTpm::pcr_extend(unsigned pcr, kl::ByteView d) {
  if (pcr >= 24) throw std::invalid_argument("pcr_extend: PCR index out of range");
  if (d.size() != 32) throw std::invalid_argument("pcr_extend: wrong digest size");
  std::lock_guard<std::mutex> lk(mu_);
  kl::Bytes buf(pcrs_[pcr].begin(), pcrs_[pcr].end());
  buf.insert(buf.end(), d.begin(), d.end());
  const auto h = kl::crypto::digest(kl::crypto::HashAlg::sha256, buf);
  std::copy(h.begin(), h.end(), pcrs_[pcr].begin());
}

void SoftwareTpm::pcr_reset(unsigned pcr) {
  if (pcr >= 24) throw std::invalid_argument("pcr_reset: PCR index out of range");
  std::lock_guard<std::mutex> lk(mu_);
  pcrs_[pcr].fill(0);
}

kl::Bytes SoftwareTpm::pcr_value(unsigned pcr) const {
  if (pcr >= 24) throw std::invalid_argument("pcr_value: PCR index out of range");
  std::lock_guard<std::mutex> lk(mu_);
  return kl::Bytes(pcrs_[pcr].begin(), pcrs_[pcr].end());
}

void SoftwareTpm::reboot() {
  std::lock_guard<std::mutex> lk(mu_);
  ++reset_count_;
  for (auto& p : pcrs_) p.fill(0);
}

QuoteEvidence SoftwareTpm::quote(kl::ByteView nonce, const std::vector<unsigned>& pcrs) {
  if (nonce.size() > 64) throw std::invalid_argument("quote: nonce longer than 64 bytes");
  std::set<unsigned> sel;
  for (unsigned p : pcrs) {
    if (p >= 24) throw std::invalid_argument("quote: PCR index out of range");
    sel.insert(p);
  }
  AttestFields f;
  kl::quote::PcrValues values;
  kl::Bytes concat;
  EVP_PKEY* ak = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (unsigned p : sel) {
      values[p] = kl::Bytes(pcrs_[p].begin(), pcrs_[p].end());
      concat.insert(concat.end(), pcrs_[p].begin(), pcrs_[p].end());
      f.pcr_bitmap |= 1u << p;
    }
    f.reset_count = reset_count_;
    ak = ak_;
    const auto now = clock_base_ms_ + static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started_)
                                          .count());
    last_clock_ = std::max(now, last_clock_ + 1);
    f.clock = last_clock_;
  }
  f.qualified_signer = ak_name_;
  f.extra_data.assign(nonce.begin(), nonce.end());
  f.pcr_digest = kl::crypto::digest(kl::crypto::HashAlg::sha256, concat);
  QuoteEvidence e;
  e.attest = marshal_quote_attest(f);
  {
    // One signing context per AK, kept: EVP_DigestSignInit per quote (an algorithm fetch) cost about a third
    // as much as the ECDSA signature itself.
    std::lock_guard<std::mutex> lk(sign_mu_);
    if (!sign_ctx_ || sign_ctx_key_ != ak) {
      sign_ctx_ = make_sign_ctx(ak);
      sign_ctx_key_ = ak;
    }
    e.signature = marshal_tpm_signature(ak, sign_digest(sign_ctx_.get(), kl::crypto::digest(kl::crypto::HashAlg::sha256, e.attest)));
  }
  e.pcr_blob = kl::quote::make_pcr_blob(TPM2_ALG_SHA256, values);
  return e;
}

}  // namespace kl::testing
