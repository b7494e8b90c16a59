#include "common/attest/tpm/public_area.hpp"

#include <cstring>
#include <memory>
#include <string>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::tpm {
namespace {

using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, ossl::Deleter<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, ossl::Deleter<OSSL_PARAM_free>>;

// Far above any real public area (an RSA-4096 key with a SHA-512 policy is ~600 bytes); bounds the work
// an attacker can ask of the unmarshaller.
constexpr std::size_t kMaxTpm2bPublic = 2048;

// The TCG EK Credential Profile's default EK authPolicy: PolicySecret(TPM_RH_ENDORSEMENT), sha256.
constexpr std::uint8_t kEkAuthPolicySha256[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
    0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};

// TCG default EK: fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt.
constexpr TPMA_OBJECT kEkAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
// Keylime's expected AK: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign = 0x00050072.
constexpr TPMA_OBJECT kAkAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

struct Curve {
  TPM2_ECC_CURVE tpm;
  int nid;
  const char* group;  // OpenSSL group name
  std::size_t bytes;
};
constexpr Curve kCurves[] = {
    {TPM2_ECC_NIST_P256, NID_X9_62_prime256v1, "prime256v1", 32},
    {TPM2_ECC_NIST_P384, NID_secp384r1, "secp384r1", 48},
    {TPM2_ECC_NIST_P521, NID_secp521r1, "secp521r1", 66},
};

const Curve* curve_by_tpm(TPM2_ECC_CURVE id) {
  for (const auto& c : kCurves)
    if (c.tpm == id) return &c;
  return nullptr;
}

const Curve* curve_by_nid(int nid) {
  for (const auto& c : kCurves)
    if (c.nid == nid) return &c;
  return nullptr;
}

ossl::Pkey pkey_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  Params params(OSSL_PARAM_BLD_to_param(bld));
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1)
    throw std::runtime_error(std::string("cannot set up ") + type + " key import: " + ossl::last_error());
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || raw == nullptr)
    throw ParseError(std::string("TPM public area holds an invalid ") + type + " key: " + ossl::last_error());
  return ossl::Pkey(raw);
}

ossl::Pkey rsa_key(const TPMT_PUBLIC& t) {
  const auto& n = t.unique.rsa;
  if (n.size == 0 || n.size > sizeof(n.buffer)) throw ParseError("RSA public area has an empty modulus");
  if ((n.buffer[n.size - 1] & 1) == 0) throw ParseError("RSA modulus is even");
  std::uint32_t e = t.parameters.rsaDetail.exponent;
  if (e == 0) e = 65537;  // TPM convention: 0 means the default exponent
  if (e < 3 || (e & 1) == 0) throw ParseError("RSA public exponent is invalid");

  ossl::Bn bn_n(BN_bin2bn(n.buffer, n.size, nullptr));
  ossl::Bn bn_e(BN_new());
  if (!bn_n || !bn_e || BN_set_word(bn_e.get(), e) != 1) throw std::runtime_error("BN allocation failed");
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    throw std::runtime_error("OSSL_PARAM_BLD failed: " + ossl::last_error());
  return pkey_from_params("RSA", bld.get());
}

ossl::Pkey ecc_key(const TPMT_PUBLIC& t) {
  const Curve* c = curve_by_tpm(t.parameters.eccDetail.curveID);
  if (c == nullptr) throw ParseError("ECC public area uses an unsupported curve");
  const auto& x = t.unique.ecc.x;
  const auto& y = t.unique.ecc.y;
  if (x.size == 0 || y.size == 0 || x.size > c->bytes || y.size > c->bytes)
    throw ParseError("ECC point coordinates have the wrong size for the curve");
  // Uncompressed SEC1 point; coordinates are left-padded to the field size since the TPM may strip
  // leading zeros. OpenSSL's import checks the point lies on the curve.
  Bytes point(1 + 2 * c->bytes, 0);
  point[0] = 0x04;
  std::memcpy(point.data() + 1 + (c->bytes - x.size), x.buffer, x.size);
  std::memcpy(point.data() + 1 + c->bytes + (c->bytes - y.size), y.buffer, y.size);

  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    throw std::runtime_error("OSSL_PARAM_BLD failed: " + ossl::last_error());
  return pkey_from_params("EC", bld.get());
}

Bytes bn_param(EVP_PKEY* key, const char* name, std::size_t pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1 || raw == nullptr)
    throw std::invalid_argument(std::string("key lacks parameter ") + name);
  ossl::Bn bn(raw);
  const std::size_t len = pad_to != 0 ? pad_to : static_cast<std::size_t>(BN_num_bytes(bn.get()));
  Bytes out(len);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(len)) < 0)
    throw std::invalid_argument(std::string("key parameter too large: ") + name);
  return out;
}

template <class Tpm2b>
void fill(Tpm2b& dst, ByteView src) {
  if (src.size() > sizeof(dst.buffer)) throw std::invalid_argument("value too large for TPM2B");
  dst.size = static_cast<UINT16>(src.size());
  std::memcpy(dst.buffer, src.data(), src.size());
}

void set_aes128_cfb(TPMT_SYM_DEF_OBJECT& sym) {
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
}

}  // namespace

PublicArea parse_tpm2b_public(ByteView in) {
  if (in.size() > kMaxTpm2bPublic) throw ParseError("TPM2B_PUBLIC is larger than 2048 bytes");
  if (in.size() < 2) throw ParseError("TPM2B_PUBLIC is truncated");
  const std::size_t declared = (static_cast<std::size_t>(in[0]) << 8) | in[1];
  if (declared != in.size() - 2)
    throw ParseError("TPM2B_PUBLIC size field (" + std::to_string(declared) + ") does not match the " +
                     std::to_string(in.size() - 2) + " bytes that follow");
  if (declared == 0) throw ParseError("TPM2B_PUBLIC is empty");

  TPM2B_PUBLIC pub{};
  size_t offset = 0;
  const TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(in.data(), in.size(), &offset, &pub);
  if (rc != TSS2_RC_SUCCESS) throw ParseError("TPM2B_PUBLIC does not unmarshal (TSS rc " + std::to_string(rc) + ")");
  if (offset != in.size()) throw ParseError("TPM2B_PUBLIC has trailing bytes inside its declared size");

  PublicArea area;
  area.tpmt = pub.publicArea;
  area.tpmt_bytes.assign(in.begin() + 2, in.end());
  return area;
}

Bytes marshal_tpm2b_public(const TPMT_PUBLIC& pub) {
  TPM2B_PUBLIC wrapped{};
  wrapped.publicArea = pub;
  Bytes out(sizeof(TPM2B_PUBLIC) + 2);
  size_t offset = 0;
  const TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&wrapped, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) throw std::invalid_argument("TPMT_PUBLIC does not marshal (TSS rc " + std::to_string(rc) + ")");
  out.resize(offset);
  return out;
}

ossl::Pkey public_key(const PublicArea& area) {
  switch (area.tpmt.type) {
    case TPM2_ALG_RSA: return rsa_key(area.tpmt);
    case TPM2_ALG_ECC: return ecc_key(area.tpmt);
    default: throw ParseError("TPM public area is neither an RSA nor an ECC key");
  }
}

Bytes name_of(const PublicArea& area) {
  const auto alg = crypto::hash_from_tpm_alg(area.tpmt.nameAlg);
  if (!alg || crypto::evp_md(*alg) == nullptr) throw ParseError("TPM public area has an unsupported nameAlg");
  Bytes name{static_cast<std::uint8_t>(area.tpmt.nameAlg >> 8), static_cast<std::uint8_t>(area.tpmt.nameAlg)};
  const Bytes h = crypto::digest(*alg, area.tpmt_bytes);
  name.insert(name.end(), h.begin(), h.end());
  return name;
}

Bytes spki_der(EVP_PKEY* key) {
  if (key == nullptr) throw std::invalid_argument("spki_der: null key");
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0 || der == nullptr) throw std::runtime_error("i2d_PUBKEY failed: " + ossl::last_error());
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

TPMT_PUBLIC tpmt_from_key(EVP_PKEY* key, bool ek_template) {
  if (key == nullptr) throw std::invalid_argument("tpmt_from_key: null key");
  TPMT_PUBLIC t{};
  t.nameAlg = TPM2_ALG_SHA256;
  if (ek_template) {
    t.objectAttributes = kEkAttributes;
    fill(t.authPolicy, ByteView(kEkAuthPolicySha256));
  } else {
    t.objectAttributes = kAkAttributes;
  }

  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
      t.type = TPM2_ALG_RSA;
      auto& p = t.parameters.rsaDetail;
      if (ek_template) {
        set_aes128_cfb(p.symmetric);
        p.scheme.scheme = TPM2_ALG_NULL;
      } else {
        p.symmetric.algorithm = TPM2_ALG_NULL;
        p.scheme.scheme = TPM2_ALG_RSASSA;
        p.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
      }
      p.keyBits = static_cast<TPMI_RSA_KEY_BITS>(EVP_PKEY_get_bits(key));
      const Bytes e = bn_param(key, OSSL_PKEY_PARAM_RSA_E);
      if (e.size() > 4) throw std::invalid_argument("RSA exponent does not fit the TPM's 32 bits");
      std::uint32_t ev = 0;
      for (auto b : e) ev = (ev << 8) | b;
      p.exponent = ev == 65537 ? 0 : ev;  // the TPM writes the default exponent as 0
      fill(t.unique.rsa, bn_param(key, OSSL_PKEY_PARAM_RSA_N));
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = {};
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), nullptr) != 1)
        throw std::invalid_argument("EC key has no named group");
      int nid = OBJ_sn2nid(group);
      if (nid == NID_undef) nid = EC_curve_nist2nid(group);
      const Curve* c = curve_by_nid(nid);
      if (c == nullptr) throw std::invalid_argument(std::string("EC curve not supported by the TPM: ") + group);
      t.type = TPM2_ALG_ECC;
      auto& p = t.parameters.eccDetail;
      if (ek_template) {
        set_aes128_cfb(p.symmetric);
        p.scheme.scheme = TPM2_ALG_NULL;
      } else {
        p.symmetric.algorithm = TPM2_ALG_NULL;
        p.scheme.scheme = TPM2_ALG_ECDSA;
        p.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
      }
      p.curveID = c->tpm;
      p.kdf.scheme = TPM2_ALG_NULL;
      fill(t.unique.ecc.x, bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, c->bytes));
      fill(t.unique.ecc.y, bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, c->bytes));
      break;
    }
    default:
      throw std::invalid_argument("tpmt_from_key: only RSA and EC keys are supported");
  }
  return t;
}

}  // namespace kl::tpm
