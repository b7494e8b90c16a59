#include "common/attest/tpm/activate_credential.hpp"

#include <cstring>
#include <stdexcept>

#include <openssl/rsa.h>

#include "common/attest/tpm/kdf.hpp"
#include "common/attest/tpm/make_credential.hpp"

namespace kl::tpm {
namespace {

// Bounds-checked big-endian reader over the blob; every read failure is a malformed blob.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  std::uint32_t u32() {
    const ByteView b = take(4);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  }
  std::uint16_t u16() {
    const ByteView b = take(2);
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
  }
  ByteView take(std::size_t n) {
    if (n > data_.size() - pos_) throw std::runtime_error("credential blob is truncated");
    const ByteView out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  ByteView tpm2b() { return take(u16()); }
  ByteView rest() { return take(data_.size() - pos_); }
  bool done() const { return pos_ == data_.size(); }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

Bytes rsa_seed(EVP_PKEY* priv, crypto::HashAlg hash, ByteView secret) {
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, priv, nullptr));
  static constexpr char kLabel[] = "IDENTITY";
  void* label = OPENSSL_memdup(kLabel, sizeof(kLabel));
  if (!ctx || label == nullptr || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), crypto::evp_md(hash)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), crypto::evp_md(hash)) != 1 ||
      EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof(kLabel)) != 1) {
    OPENSSL_free(label);
    throw std::runtime_error("RSA-OAEP setup failed: " + ossl::last_error());
  }
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, secret.data(), secret.size()) != 1)
    throw std::runtime_error("RSA-OAEP decryption failed: " + ossl::last_error());
  Bytes seed(len);
  if (EVP_PKEY_decrypt(ctx.get(), seed.data(), &len, secret.data(), secret.size()) != 1)
    throw std::runtime_error("RSA-OAEP decryption failed: " + ossl::last_error());
  seed.resize(len);
  return seed;
}

Bytes ecc_seed(EVP_PKEY* priv, const PublicArea& ek, crypto::HashAlg hash, ByteView secret) {
  Reader r(secret);
  const ByteView x = r.tpm2b();
  const ByteView y = r.tpm2b();
  if (!r.done()) throw std::runtime_error("encrypted secret has trailing bytes");
  if (x.size() > TPM2_MAX_ECC_KEY_BYTES || y.size() > TPM2_MAX_ECC_KEY_BYTES)
    throw std::runtime_error("ephemeral point coordinate too large");

  // Reuse the public-area importer to get an on-curve check for the ephemeral point.
  PublicArea eph = ek;
  eph.tpmt.unique.ecc.x.size = static_cast<UINT16>(x.size());
  std::memcpy(eph.tpmt.unique.ecc.x.buffer, x.data(), x.size());
  eph.tpmt.unique.ecc.y.size = static_cast<UINT16>(y.size());
  std::memcpy(eph.tpmt.unique.ecc.y.buffer, y.data(), y.size());
  ossl::Pkey eph_pub = public_key(eph);

  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, priv, nullptr));
  size_t zlen = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), eph_pub.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &zlen) != 1)
    throw std::runtime_error("ECDH setup failed: " + ossl::last_error());
  Bytes z(zlen);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &zlen) != 1) throw std::runtime_error("ECDH failed: " + ossl::last_error());
  z.resize(zlen);
  const auto& ekx = ek.tpmt.unique.ecc.x;
  return kdfe(hash, z, "IDENTITY", x, ByteView(ekx.buffer, ekx.size),
              static_cast<std::uint32_t>(crypto::digest_size(hash) * 8));
}

}  // namespace

Bytes activate_credential_software(EVP_PKEY* ek_private, const PublicArea& ek, ByteView ak_name, ByteView blob) {
  if (ek_private == nullptr) throw std::invalid_argument("activate_credential_software: null EK key");
  const auto p = credential_detail::ek_params(ek);
  const std::size_t dsize = crypto::digest_size(p.hash);

  Reader r(blob);
  if (r.u32() != 0xBADCC0DE) throw std::runtime_error("credential blob has the wrong magic");
  if (r.u32() != 1) throw std::runtime_error("credential blob has an unsupported version");
  Reader id(r.tpm2b());
  const ByteView outer_hmac = id.tpm2b();
  if (outer_hmac.size() != dsize) throw std::runtime_error("outer HMAC has the wrong size");
  const ByteView enc_identity = id.rest();
  const ByteView secret = r.tpm2b();
  if (!r.done()) throw std::runtime_error("credential blob has trailing bytes");

  const Bytes seed = ek.tpmt.type == TPM2_ALG_RSA ? rsa_seed(ek_private, p.hash, secret)
                                                  : ecc_seed(ek_private, ek, p.hash, secret);

  // Integrity before decryption, as the TPM does: a wrong HMAC means a wrong EK, a wrong AK name or tampering.
  const Bytes hmac_key = kdfa(p.hash, seed, "INTEGRITY", {}, {}, static_cast<std::uint32_t>(dsize * 8));
  Bytes mac_input(enc_identity.begin(), enc_identity.end());
  mac_input.insert(mac_input.end(), ak_name.begin(), ak_name.end());
  if (!constant_time_equal(crypto::hmac(p.hash, hmac_key, mac_input), outer_hmac))
    throw std::runtime_error("credential blob integrity check failed");

  const Bytes sym_key = kdfa(p.hash, seed, "STORAGE", ak_name, {}, p.sym_key_bits);
  const Bytes plain = credential_detail::aes_cfb(sym_key, enc_identity, false);
  Reader cr(plain);
  const ByteView credential = cr.tpm2b();
  if (!cr.done()) throw std::runtime_error("decrypted credential has trailing bytes");
  return Bytes(credential.begin(), credential.end());
}

}  // namespace kl::tpm
