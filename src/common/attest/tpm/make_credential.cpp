#include "common/attest/tpm/make_credential.hpp"

#include <cstring>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/random.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/kdf.hpp"

namespace kl::tpm {
namespace credential_detail {

EkParams ek_params(const PublicArea& ek) {
  const TPMT_SYM_DEF_OBJECT* sym = nullptr;
  switch (ek.tpmt.type) {
    case TPM2_ALG_RSA: sym = &ek.tpmt.parameters.rsaDetail.symmetric; break;
    case TPM2_ALG_ECC: sym = &ek.tpmt.parameters.eccDetail.symmetric; break;
    default: throw ParseError("EK is neither an RSA nor an ECC key");
  }
  const auto hash = crypto::hash_from_tpm_alg(ek.tpmt.nameAlg);
  if (!hash || *hash == crypto::HashAlg::sm3_256 || crypto::evp_md(*hash) == nullptr)
    throw ParseError("EK nameAlg is not one of sha1/sha256/sha384/sha512");
  // The credential is wrapped with the EK's own symmetric algorithm; only AES is implemented
  // (SM4/Camellia EKs are not seen in practice). The TPM always uses CFB for this wrap.
  if (sym->algorithm != TPM2_ALG_AES) throw ParseError("EK has no AES symmetric definition");
  const std::uint16_t bits = sym->keyBits.aes;
  if (bits != 128 && bits != 192 && bits != 256) throw ParseError("EK AES key size is not 128/192/256");
  return {*hash, bits};
}

Bytes aes_cfb(ByteView key, ByteView data, bool encrypt) {
  const EVP_CIPHER* cipher = nullptr;
  switch (key.size()) {
    case 16: cipher = EVP_aes_128_cfb128(); break;
    case 24: cipher = EVP_aes_192_cfb128(); break;
    case 32: cipher = EVP_aes_256_cfb128(); break;
    default: throw std::invalid_argument("AES key must be 16, 24 or 32 bytes");
  }
  const std::uint8_t iv[16] = {};
  ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
  Bytes out(data.size() + 16);
  int len = 0, fin = 0;
  if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), iv, encrypt ? 1 : 0) != 1 ||
      EVP_CipherUpdate(ctx.get(), out.data(), &len, data.data(), static_cast<int>(data.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + len, &fin) != 1)
    throw std::runtime_error("AES-CFB failed: " + ossl::last_error());
  out.resize(static_cast<std::size_t>(len + fin));
  return out;
}

}  // namespace credential_detail

namespace {

using credential_detail::EkParams;

void put_u16(Bytes& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put_u32(Bytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

struct Seed {
  Bytes seed;
  Bytes encrypted;  // TPM2B_ENCRYPTED_SECRET contents (without its size)
};

// RSA EK: the seed travels OAEP-encrypted; label "IDENTITY" with its NUL, as TPM2_ActivateCredential expects.
Seed rsa_seed(const PublicArea& ek, crypto::HashAlg hash) {
  Seed s{crypto::random_bytes(crypto::digest_size(hash)), {}};
  ossl::Pkey pub = public_key(ek);
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pub.get(), nullptr));
  static constexpr char kLabel[] = "IDENTITY";  // sizeof includes the NUL
  void* label = OPENSSL_memdup(kLabel, sizeof(kLabel));
  if (!ctx || label == nullptr || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), crypto::evp_md(hash)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), crypto::evp_md(hash)) != 1) {
    OPENSSL_free(label);
    throw std::runtime_error("RSA-OAEP setup failed: " + ossl::last_error());
  }
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof(kLabel)) != 1) {
    OPENSSL_free(label);
    throw std::runtime_error("RSA-OAEP label failed: " + ossl::last_error());
  }
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, s.seed.data(), s.seed.size()) != 1)
    throw ParseError("EK RSA key cannot OAEP-encrypt the seed: " + ossl::last_error());
  s.encrypted.resize(len);
  if (EVP_PKEY_encrypt(ctx.get(), s.encrypted.data(), &len, s.seed.data(), s.seed.size()) != 1)
    throw ParseError("EK RSA key cannot OAEP-encrypt the seed: " + ossl::last_error());
  s.encrypted.resize(len);
  return s;
}

using EcGroup = std::unique_ptr<EC_GROUP, ossl::Deleter<EC_GROUP_free>>;
using EcPoint = std::unique_ptr<EC_POINT, ossl::Deleter<EC_POINT_free>>;
using BnCtx = std::unique_ptr<BN_CTX, ossl::Deleter<BN_CTX_free>>;

int curve_nid(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256: return NID_X9_62_prime256v1;
    case TPM2_ECC_NIST_P384: return NID_secp384r1;
    case TPM2_ECC_NIST_P521: return NID_secp521r1;
    default: throw ParseError("EK curve is not supported for MakeCredential");
  }
}

Bytes coordinate(const BIGNUM* v, std::size_t len) {
  Bytes out(len);
  if (BN_bn2binpad(v, out.data(), static_cast<int>(len)) < 0) throw std::runtime_error("EC coordinate too large");
  return out;
}

// ECC EK: one-pass ECDH with an ephemeral key, the TPM's ECC secret sharing:
// seed = KDFe(Z.x, "IDENTITY", ephemeral.x, EK.x); the ephemeral point is the encrypted secret.
// Done on EC_POINTs directly: going through EVP_PKEY import/keygen/derive costs twice as much, and
// this runs once per registration.
Seed ecc_seed(const PublicArea& ek, crypto::HashAlg hash) {
  EcGroup group(EC_GROUP_new_by_curve_name(curve_nid(ek.tpmt.parameters.eccDetail.curveID)));
  BnCtx bn_ctx(BN_CTX_new());
  if (!group || !bn_ctx) throw std::runtime_error("EC setup failed: " + ossl::last_error());
  const std::size_t coord = (static_cast<std::size_t>(EC_GROUP_get_degree(group.get())) + 7) / 8;
  const auto& ux = ek.tpmt.unique.ecc.x;
  const auto& uy = ek.tpmt.unique.ecc.y;
  if (ux.size == 0 || uy.size == 0 || ux.size > coord || uy.size > coord) throw ParseError("EK point has bad coordinates");

  ossl::Bn x(BN_bin2bn(ux.buffer, ux.size, nullptr)), y(BN_bin2bn(uy.buffer, uy.size, nullptr));
  EcPoint ek_point(EC_POINT_new(group.get()));
  if (!x || !y || !ek_point ||
      EC_POINT_set_affine_coordinates(group.get(), ek_point.get(), x.get(), y.get(), bn_ctx.get()) != 1 ||
      EC_POINT_is_on_curve(group.get(), ek_point.get(), bn_ctx.get()) != 1)
    throw ParseError("EK point is not on its curve");

  // Ephemeral private scalar d in [1, order-1]; public E = d*G; shared Z = d*EK.
  ossl::Bn d(BN_new());
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  do {
    if (!d || BN_priv_rand_range(d.get(), order) != 1) throw std::runtime_error("ephemeral EC key generation failed");
  } while (BN_is_zero(d.get()));
  EcPoint eph(EC_POINT_new(group.get())), shared(EC_POINT_new(group.get()));
  ossl::Bn ex_bn(BN_new()), ey_bn(BN_new()), zx_bn(BN_new());
  if (!eph || !shared || !ex_bn || !ey_bn || !zx_bn ||
      EC_POINT_mul(group.get(), eph.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_mul(group.get(), shared.get(), nullptr, ek_point.get(), d.get(), bn_ctx.get()) != 1 ||
      EC_POINT_is_at_infinity(group.get(), shared.get()) ||
      EC_POINT_get_affine_coordinates(group.get(), eph.get(), ex_bn.get(), ey_bn.get(), bn_ctx.get()) != 1 ||
      EC_POINT_get_affine_coordinates(group.get(), shared.get(), zx_bn.get(), nullptr, bn_ctx.get()) != 1)
    throw std::runtime_error("ECDH failed: " + ossl::last_error());

  const Bytes z = coordinate(zx_bn.get(), coord);  // Z.x padded to the field size, as the TPM does
  const Bytes ex = coordinate(ex_bn.get(), coord);
  const Bytes ey = coordinate(ey_bn.get(), coord);

  Seed s;
  s.seed = kdfe(hash, z, "IDENTITY", ex, ByteView(ux.buffer, ux.size),
                static_cast<std::uint32_t>(crypto::digest_size(hash) * 8));
  put_u16(s.encrypted, ex.size());  // TPMS_ECC_POINT: TPM2B x, TPM2B y
  s.encrypted.insert(s.encrypted.end(), ex.begin(), ex.end());
  put_u16(s.encrypted, ey.size());
  s.encrypted.insert(s.encrypted.end(), ey.begin(), ey.end());
  return s;
}

}  // namespace

std::string random_challenge() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz";
  static_assert(sizeof(kAlphabet) - 1 == 62);
  const Bytes r = crypto::random_bytes(32);
  std::string out;
  out.reserve(r.size());
  for (auto b : r) out.push_back(kAlphabet[b % 62]);
  return out;
}

Bytes make_credential(const PublicArea& ek, ByteView ak_name, ByteView credential) {
  const EkParams p = credential_detail::ek_params(ek);
  // TPM2_MakeCredential's own limits: the credential is a digest-sized value, the name a TPM2B_NAME.
  if (credential.size() > crypto::digest_size(p.hash))
    throw std::invalid_argument("credential is larger than the EK nameAlg digest");
  if (ak_name.empty() || ak_name.size() > sizeof(TPMU_NAME)) throw std::invalid_argument("AK name has an invalid size");

  const Seed s = ek.tpmt.type == TPM2_ALG_RSA ? rsa_seed(ek, p.hash) : ecc_seed(ek, p.hash);

  const Bytes sym_key = kdfa(p.hash, s.seed, "STORAGE", ak_name, {}, p.sym_key_bits);
  Bytes plain;
  put_u16(plain, credential.size());
  plain.insert(plain.end(), credential.begin(), credential.end());
  const Bytes enc_identity = credential_detail::aes_cfb(sym_key, plain, true);

  const std::size_t dsize = crypto::digest_size(p.hash);
  const Bytes hmac_key = kdfa(p.hash, s.seed, "INTEGRITY", {}, {}, static_cast<std::uint32_t>(dsize * 8));
  Bytes mac_input = enc_identity;
  mac_input.insert(mac_input.end(), ak_name.begin(), ak_name.end());
  const Bytes outer_hmac = crypto::hmac(p.hash, hmac_key, mac_input);

  Bytes blob;
  put_u32(blob, 0xBADCC0DE);  // tpm2-tools file magic
  put_u32(blob, 1);           // file format version
  put_u16(blob, 2 + outer_hmac.size() + enc_identity.size());  // TPM2B_ID_OBJECT
  put_u16(blob, outer_hmac.size());
  blob.insert(blob.end(), outer_hmac.begin(), outer_hmac.end());
  blob.insert(blob.end(), enc_identity.begin(), enc_identity.end());
  put_u16(blob, s.encrypted.size());  // TPM2B_ENCRYPTED_SECRET
  blob.insert(blob.end(), s.encrypted.begin(), s.encrypted.end());
  return blob;
}

}  // namespace kl::tpm
