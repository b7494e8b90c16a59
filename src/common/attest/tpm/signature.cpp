#include "common/attest/tpm/signature.hpp"

#include <memory>
#include <optional>
#include <string>

#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::tpm {
namespace {

constexpr std::size_t kMaxRsaSig = 512;   // sizeof(TPM2B_PUBLIC_KEY_RSA.buffer): RSA-4096
constexpr std::size_t kMaxEccParam = 128;  // sizeof(TPM2B_ECC_PARAMETER.buffer)

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  std::uint16_t u16(const char* what) {
    need(2, what);
    std::uint16_t v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  Bytes tpm2b(std::size_t max, const char* what) {
    std::uint16_t size = u16(what);
    if (size > max) throw ParseError(std::string("TPMT_SIGNATURE: ") + what + " too large");
    need(size, what);
    Bytes out(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
              data_.begin() + static_cast<std::ptrdiff_t>(pos_ + size));
    pos_ += size;
    return out;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  void need(std::size_t n, const char* what) const {
    if (data_.size() - pos_ < n) throw ParseError(std::string("TPMT_SIGNATURE truncated in ") + what);
  }
  ByteView data_;
  std::size_t pos_ = 0;
};

using EcdsaSig = std::unique_ptr<ECDSA_SIG, ossl::Deleter<ECDSA_SIG_free>>;

// DER SEQUENCE{INTEGER r, INTEGER s}; BN_bin2bn strips leading zeros, i2d makes minimal integers.
std::optional<Bytes> ecdsa_der(ByteView r, ByteView s) {
  EcdsaSig sig(ECDSA_SIG_new());
  if (!sig) return std::nullopt;
  BIGNUM* br = BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr);
  BIGNUM* bs = BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr);
  if (!br || !bs || ECDSA_SIG_set0(sig.get(), br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    return std::nullopt;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return std::nullopt;
  return der;
}

bool usable_hash(std::uint16_t tpm_alg) {
  auto h = crypto::hash_from_tpm_alg(tpm_alg);
  return h && *h != crypto::HashAlg::sm3_256;
}

}  // namespace

Signature parse_signature(ByteView tpmt_signature) {
  Reader r(tpmt_signature);
  Signature sig;
  sig.sig_alg = r.u16("sigAlg");
  sig.hash_alg = r.u16("hash");
  switch (sig.sig_alg) {
    case kAlgRsassa:
    case kAlgRsapss:
      sig.rsa = r.tpm2b(kMaxRsaSig, "signature");
      break;
    case kAlgEcdsa:
      sig.ecc_r = r.tpm2b(kMaxEccParam, "signatureR");
      sig.ecc_s = r.tpm2b(kMaxEccParam, "signatureS");
      break;
    default:
      throw ParseError("TPMT_SIGNATURE: unsupported signature algorithm " + std::to_string(sig.sig_alg));
  }
  if (!r.at_end()) throw ParseError("TPMT_SIGNATURE: trailing bytes");
  return sig;
}

bool verify_signature(EVP_PKEY* key, const Signature& sig, ByteView signed_data) {
  if (!key || !usable_hash(sig.hash_alg)) return false;
  const crypto::HashAlg hash = *crypto::hash_from_tpm_alg(sig.hash_alg);
  const EVP_MD* md = crypto::evp_md(hash);
  if (!md) return false;

  const int key_type = EVP_PKEY_get_base_id(key);
  Bytes der;
  ByteView sig_bytes;
  if (key_type == EVP_PKEY_RSA) {
    if (sig.sig_alg != kAlgRsassa && sig.sig_alg != kAlgRsapss) return false;
    sig_bytes = sig.rsa;
  } else if (key_type == EVP_PKEY_EC) {
    if (sig.sig_alg != kAlgEcdsa) return false;
    // r and s are integers modulo the group order: 1..ceil(bits/8) bytes each.
    const std::size_t max = static_cast<std::size_t>((EVP_PKEY_get_bits(key) + 7) / 8);
    if (sig.ecc_r.empty() || sig.ecc_s.empty() || sig.ecc_r.size() > max || sig.ecc_s.size() > max) return false;
    auto d = ecdsa_der(sig.ecc_r, sig.ecc_s);
    if (!d) return false;
    der = std::move(*d);
    sig_bytes = der;
  } else {
    return false;
  }

  Bytes digest;
  try {
    digest = crypto::digest(hash, signed_data);
  } catch (const std::exception&) {
    return false;
  }

  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1)
    return false;
  if (key_type == EVP_PKEY_RSA) {
    if (sig.sig_alg == kAlgRsapss) {
      // A TPM signs RSAPSS with salt length = digest size (TPM 2.0 Part 1, B.7).
      if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) != 1)
        return false;
    } else if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
      return false;
    }
  }
  const int rc = EVP_PKEY_verify(ctx.get(), sig_bytes.data(), sig_bytes.size(), digest.data(), digest.size());
  if (rc != 1) ossl::last_error();  // drop the error queue so it does not leak into unrelated calls
  return rc == 1;
}

}  // namespace kl::tpm
