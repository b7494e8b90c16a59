#include "agent/tpm_agent.hpp"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kl::testing {
namespace {

// The TCG EK Credential Profile's standard EK authPolicy: PolicySecret(TPM_RH_ENDORSEMENT), SHA-256.
constexpr std::uint8_t kEkPolicySha256[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                              0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                              0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};
constexpr TPM2_HANDLE kRsaEkCertIndex = 0x01c00002;
constexpr TPM2_HANDLE kEccEkCertIndex = 0x01c0000a;
constexpr std::uint16_t kNvChunk = 768;   // below every TPM's TPM2_PT_NV_BUFFER_MAX (1024 on swtpm)

void check(TSS2_RC rc, const char* what) {
  if (rc != TSS2_RC_SUCCESS) throw std::runtime_error(std::string(what) + " failed: " + Tss2_RC_Decode(rc));
}

// ESAPI output parameters are heap-allocated and released with Esys_Free.
struct EsysFree {
  void operator()(void* p) const noexcept { Esys_Free(p); }
};
template <class T>
using EsysPtr = std::unique_ptr<T, EsysFree>;

template <class T, class Fn>
kl::Bytes marshal(const T& value, Fn fn) {
  kl::Bytes out(sizeof(T) + 16);
  size_t offset = 0;
  check(fn(&value, out.data(), out.size(), &offset), "marshal");
  out.resize(offset);
  return out;
}

TPM2B_PUBLIC ek_template(TpmAgent::EkAlg alg) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  p.authPolicy.size = sizeof kEkPolicySha256;
  std::memcpy(p.authPolicy.buffer, kEkPolicySha256, sizeof kEkPolicySha256);
  if (alg == TpmAgent::EkAlg::rsa2048) {   // template L-1
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.exponent = 0;
    p.unique.rsa.size = 256;   // zero-filled
  } else {                                  // template L-2
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric = {TPM2_ALG_AES, {128}, {TPM2_ALG_CFB}};
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    p.unique.ecc.x.size = 32;
    p.unique.ecc.y.size = 32;
  }
  return t;
}

// The AK rust-keylime creates: restricted signing key, SHA-256 scheme, no policy, empty auth.
TPM2B_PUBLIC ak_template(TpmAgent::EkAlg alg) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;   // 0x00050072
  if (alg == TpmAgent::EkAlg::rsa2048) {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.exponent = 0;
  } else {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  }
  return t;
}

// A DER certificate read from NV may be followed by padding; keep exactly the outer SEQUENCE.
kl::Bytes trim_der(kl::Bytes der) {
  if (der.size() < 2 || der[0] != 0x30) return der;
  std::size_t len = der[1], header = 2;
  if (len & 0x80) {
    const std::size_t n = len & 0x7f;
    if (n == 0 || n > 3 || der.size() < 2 + n) return der;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | der[2 + i];
    header = 2 + n;
  }
  if (header + len < der.size()) der.resize(header + len);
  return der;
}

}  // namespace

struct TpmAgent::Impl {
  struct TctiDeleter {
    void operator()(TSS2_TCTI_CONTEXT* t) const noexcept { Tss2_TctiLdr_Finalize(&t); }
  };
  struct EsysDeleter {
    void operator()(ESYS_CONTEXT* c) const noexcept { Esys_Finalize(&c); }
  };
  std::unique_ptr<TSS2_TCTI_CONTEXT, TctiDeleter> tcti;
  std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys;   // declared after tcti: finalized first
  ESYS_TR ek = ESYS_TR_NONE;
  ESYS_TR ak = ESYS_TR_NONE;
  EkAlg alg{};
  kl::Bytes ek_pub, ak_pub;
  std::optional<kl::Bytes> ek_cert;

  ~Impl() {
    // Transient objects outlive the connection on a TPM without a resource manager (swtpm socket): flush them.
    if (esys) {
      if (ak != ESYS_TR_NONE) Esys_FlushContext(esys.get(), ak);
      if (ek != ESYS_TR_NONE) Esys_FlushContext(esys.get(), ek);
    }
  }

  ESYS_CONTEXT* ctx() const { return esys.get(); }

  // A policy session satisfying the EK's authPolicy: PolicySecret(endorsement hierarchy, empty auth).
  // Owned by the returned guard, flushed when it goes away.
  struct Session {
    ESYS_CONTEXT* ctx;
    ESYS_TR handle = ESYS_TR_NONE;
    ~Session() {
      if (handle != ESYS_TR_NONE) Esys_FlushContext(ctx, handle);
    }
  };
  std::unique_ptr<Session> ek_policy_session() const {
    auto s = std::make_unique<Session>(Session{ctx()});
    const TPMT_SYM_DEF sym{TPM2_ALG_NULL, {0}, {0}};
    check(Esys_StartAuthSession(ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr,
                                TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &s->handle),
          "Esys_StartAuthSession");
    // Keep the session alive after use so that ESAPI and the TPM agree on who flushes it (we do).
    check(Esys_TRSess_SetAttributes(ctx(), s->handle, TPMA_SESSION_CONTINUESESSION, 0xff),
          "Esys_TRSess_SetAttributes");
    TPM2B_TIMEOUT* timeout = nullptr;
    TPMT_TK_AUTH* ticket = nullptr;
    TSS2_RC rc = Esys_PolicySecret(ctx(), ESYS_TR_RH_ENDORSEMENT, s->handle, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, nullptr, nullptr, nullptr, 0, &timeout, &ticket);
    Esys_Free(timeout);
    Esys_Free(ticket);
    check(rc, "Esys_PolicySecret(endorsement)");
    return s;
  }

  std::optional<kl::Bytes> read_nv(TPM2_HANDLE index) const {
    ESYS_TR nv = ESYS_TR_NONE;
    if (Esys_TR_FromTPMPublic(ctx(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv) != TSS2_RC_SUCCESS)
      return std::nullopt;   // index not defined: no certificate provisioned
    struct Close {
      ESYS_CONTEXT* c;
      ESYS_TR* h;
      ~Close() { Esys_TR_Close(c, h); }
    } close{ctx(), &nv};
    TPM2B_NV_PUBLIC* pub_raw = nullptr;
    TPM2B_NAME* name_raw = nullptr;
    TSS2_RC rc = Esys_NV_ReadPublic(ctx(), nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub_raw, &name_raw);
    EsysPtr<TPM2B_NV_PUBLIC> pub(pub_raw);
    EsysPtr<TPM2B_NAME> name(name_raw);
    check(rc, "Esys_NV_ReadPublic");
    const std::uint16_t size = pub->nvPublic.dataSize;
    kl::Bytes data;
    data.reserve(size);
    while (data.size() < size) {
      const auto chunk = static_cast<std::uint16_t>(std::min<std::size_t>(kNvChunk, size - data.size()));
      TPM2B_MAX_NV_BUFFER* buf_raw = nullptr;
      rc = Esys_NV_Read(ctx(), nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, chunk,
                        static_cast<std::uint16_t>(data.size()), &buf_raw);
      EsysPtr<TPM2B_MAX_NV_BUFFER> buf(buf_raw);
      check(rc, "Esys_NV_Read");
      if (buf->size == 0) break;
      data.insert(data.end(), buf->buffer, buf->buffer + buf->size);
    }
    return data;
  }
};

TpmAgent::TpmAgent(const std::string& tcti, EkAlg alg) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.alg = alg;
  TSS2_TCTI_CONTEXT* t = nullptr;
  check(Tss2_TctiLdr_Initialize(tcti.c_str(), &t), ("Tss2_TctiLdr_Initialize(" + tcti + ")").c_str());
  m.tcti.reset(t);
  ESYS_CONTEXT* c = nullptr;
  check(Esys_Initialize(&c, m.tcti.get(), nullptr), "Esys_Initialize");
  m.esys.reset(c);

  // EK: CreatePrimary under the endorsement hierarchy (empty auth, as provisioned by swtpm_setup).
  {
    const TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_PUBLIC in_public = ek_template(alg);
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION pcrs{};
    TPM2B_PUBLIC* out_raw = nullptr;
    TPM2B_CREATION_DATA* cd = nullptr;
    TPM2B_DIGEST* hash = nullptr;
    TPMT_TK_CREATION* ticket = nullptr;
    TSS2_RC rc = Esys_CreatePrimary(m.ctx(), ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                    &sensitive, &in_public, &outside, &pcrs, &m.ek, &out_raw, &cd, &hash, &ticket);
    EsysPtr<TPM2B_PUBLIC> out(out_raw);
    Esys_Free(cd);
    Esys_Free(hash);
    Esys_Free(ticket);
    check(rc, "Esys_CreatePrimary(EK)");
    m.ek_pub = marshal(*out, Tss2_MU_TPM2B_PUBLIC_Marshal);
  }

  // AK: Create + Load under the EK, each authorised by a fresh PolicySecret(endorsement) session.
  {
    const TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_PUBLIC in_public = ak_template(alg);
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION pcrs{};
    TPM2B_PRIVATE* priv_raw = nullptr;
    TPM2B_PUBLIC* pub_raw = nullptr;
    TPM2B_CREATION_DATA* cd = nullptr;
    TPM2B_DIGEST* hash = nullptr;
    TPMT_TK_CREATION* ticket = nullptr;
    TSS2_RC rc;
    {
      auto session = m.ek_policy_session();
      rc = Esys_Create(m.ctx(), m.ek, session->handle, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &in_public, &outside,
                       &pcrs, &priv_raw, &pub_raw, &cd, &hash, &ticket);
    }
    EsysPtr<TPM2B_PRIVATE> priv(priv_raw);
    EsysPtr<TPM2B_PUBLIC> pub(pub_raw);
    Esys_Free(cd);
    Esys_Free(hash);
    Esys_Free(ticket);
    check(rc, "Esys_Create(AK)");
    {
      auto session = m.ek_policy_session();
      check(Esys_Load(m.ctx(), m.ek, session->handle, ESYS_TR_NONE, ESYS_TR_NONE, priv.get(), pub.get(), &m.ak),
            "Esys_Load(AK)");
    }
    m.ak_pub = marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal);
  }

  if (auto cert = m.read_nv(alg == EkAlg::rsa2048 ? kRsaEkCertIndex : kEccEkCertIndex)) m.ek_cert = trim_der(*cert);
}

TpmAgent::~TpmAgent() = default;

kl::Bytes TpmAgent::ek_tpm2b_public() const { return impl_->ek_pub; }
kl::Bytes TpmAgent::ak_tpm2b_public() const { return impl_->ak_pub; }
std::optional<kl::Bytes> TpmAgent::ek_certificate_der() const { return impl_->ek_cert; }

kl::Bytes TpmAgent::activate_credential(kl::ByteView blob) {
  const CredentialBlob parts = parse_credential_blob(blob);
  TPM2B_ID_OBJECT id{};
  id.size = static_cast<UINT16>(parts.id_object.size());
  std::memcpy(id.credential, parts.id_object.data(), parts.id_object.size());
  TPM2B_ENCRYPTED_SECRET secret{};
  secret.size = static_cast<UINT16>(parts.encrypted_secret.size());
  std::memcpy(secret.secret, parts.encrypted_secret.data(), parts.encrypted_secret.size());

  Impl& m = *impl_;
  auto session = m.ek_policy_session();
  TPM2B_DIGEST* out_raw = nullptr;
  // shandle1 authorises the AK (activateHandle, empty password), shandle2 the EK (keyHandle, policy).
  TSS2_RC rc = Esys_ActivateCredential(m.ctx(), m.ak, m.ek, ESYS_TR_PASSWORD, session->handle, ESYS_TR_NONE, &id,
                                       &secret, &out_raw);
  EsysPtr<TPM2B_DIGEST> out(out_raw);
  check(rc, "Esys_ActivateCredential");
  return kl::Bytes(out->buffer, out->buffer + out->size);
}

TpmAgent::Quote TpmAgent::quote(kl::ByteView nonce, kl::crypto::HashAlg bank, const std::vector<unsigned>& pcrs) {
  Impl& m = *impl_;
  TPM2B_DATA qualifying{};
  if (nonce.size() > sizeof qualifying.buffer) throw std::invalid_argument("quote: nonce longer than 64 bytes");
  qualifying.size = static_cast<UINT16>(nonce.size());
  std::memcpy(qualifying.buffer, nonce.data(), nonce.size());

  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = kl::crypto::tpm_alg_of(bank);
  sel.pcrSelections[0].sizeofSelect = 3;
  for (unsigned pcr : pcrs) {
    if (pcr >= 24) throw std::invalid_argument("quote: PCR index out of range");
    sel.pcrSelections[0].pcrSelect[pcr / 8] |= static_cast<BYTE>(1u << (pcr % 8));
  }

  const TPMT_SIG_SCHEME scheme{TPM2_ALG_NULL, {}};   // the AK's own scheme
  TPM2B_ATTEST* quoted_raw = nullptr;
  TPMT_SIGNATURE* sig_raw = nullptr;
  TSS2_RC rc = Esys_Quote(m.ctx(), m.ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying, &scheme, &sel,
                          &quoted_raw, &sig_raw);
  EsysPtr<TPM2B_ATTEST> quoted(quoted_raw);
  EsysPtr<TPMT_SIGNATURE> sig(sig_raw);
  check(rc, "Esys_Quote");

  Quote q;
  q.attest.assign(quoted->attestationData, quoted->attestationData + quoted->size);
  q.signature = marshal(*sig, Tss2_MU_TPMT_SIGNATURE_Marshal);
  q.pcr_selection = marshal(sel, Tss2_MU_TPML_PCR_SELECTION_Marshal);

  // PCR_Read returns at most 8 digests per call and clears what it returned from the selection; repeat.
  TPML_PCR_SELECTION remaining = sel;
  std::vector<unsigned> wanted = pcrs;
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  while (q.pcr_values.size() < wanted.size()) {
    UINT32 counter = 0;
    TPML_PCR_SELECTION* out_sel_raw = nullptr;
    TPML_DIGEST* values_raw = nullptr;
    rc = Esys_PCR_Read(m.ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &remaining, &counter, &out_sel_raw,
                       &values_raw);
    EsysPtr<TPML_PCR_SELECTION> out_sel(out_sel_raw);
    EsysPtr<TPML_DIGEST> values(values_raw);
    check(rc, "Esys_PCR_Read");
    if (values->count == 0) throw std::runtime_error("Esys_PCR_Read returned no values (bank not active?)");
    std::size_t v = 0;
    for (unsigned pcr = 0; pcr < 24 && v < values->count; ++pcr) {
      if (out_sel->count == 0) break;
      if (!(out_sel->pcrSelections[0].pcrSelect[pcr / 8] & (1u << (pcr % 8)))) continue;
      const TPM2B_DIGEST& d = values->digests[v++];
      q.pcr_values.emplace_back(pcr, kl::Bytes(d.buffer, d.buffer + d.size));
      remaining.pcrSelections[0].pcrSelect[pcr / 8] &= static_cast<BYTE>(~(1u << (pcr % 8)));
    }
  }
  std::sort(q.pcr_values.begin(), q.pcr_values.end());
  return q;
}

void TpmAgent::pcr_extend(unsigned pcr, kl::crypto::HashAlg bank, kl::ByteView digest) {
  if (pcr >= 24) throw std::invalid_argument("pcr_extend: PCR index out of range");
  if (digest.size() != kl::crypto::digest_size(bank)) throw std::invalid_argument("pcr_extend: wrong digest size");
  TPML_DIGEST_VALUES values{};
  values.count = 1;
  values.digests[0].hashAlg = kl::crypto::tpm_alg_of(bank);
  std::memcpy(&values.digests[0].digest, digest.data(), digest.size());
  check(Esys_PCR_Extend(impl_->ctx(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values),
        "Esys_PCR_Extend");
}

}  // namespace kl::testing
