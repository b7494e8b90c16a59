#include "common/attest/crypto/digest.hpp"

#include <stdexcept>
#include <string>

#include <openssl/hmac.h>
#include <openssl/opensslconf.h>

#include "common/attest/crypto/ossl.hpp"

namespace kl::crypto {
namespace {

struct HashInfo {
  HashAlg alg;
  std::string_view name;
  std::uint16_t tpm_alg;
  std::size_t size;
};

// TPM algorithm ids from TCG Algorithm Registry (TPM2_ALG_SHA1 = 0x0004, ...).
constexpr HashInfo kHashes[] = {
    {HashAlg::sha1, "sha1", 0x0004, 20},
    {HashAlg::sha256, "sha256", 0x000B, 32},
    {HashAlg::sha384, "sha384", 0x000C, 48},
    {HashAlg::sha512, "sha512", 0x000D, 64},
    {HashAlg::sm3_256, "sm3_256", 0x0012, 32},
};

const HashInfo& info(HashAlg alg) {
  for (const auto& h : kHashes)
    if (h.alg == alg) return h;
  throw std::invalid_argument("unknown HashAlg");
}

const EVP_MD* require_md(HashAlg alg) {
  const EVP_MD* md = evp_md(alg);
  if (md == nullptr)
    throw std::runtime_error("hash algorithm " + std::string(hash_name(alg)) + " is not available in OpenSSL");
  return md;
}

}  // namespace

std::optional<HashAlg> hash_from_name(std::string_view name) {
  for (const auto& h : kHashes)
    if (h.name == name) return h.alg;
  return std::nullopt;
}

std::string_view hash_name(HashAlg alg) { return info(alg).name; }

std::optional<HashAlg> hash_from_tpm_alg(std::uint16_t tpm_alg_id) {
  for (const auto& h : kHashes)
    if (h.tpm_alg == tpm_alg_id) return h.alg;
  return std::nullopt;
}

std::uint16_t tpm_alg_of(HashAlg alg) { return info(alg).tpm_alg; }

std::size_t digest_size(HashAlg alg) { return info(alg).size; }

const EVP_MD* evp_md(HashAlg alg) {
  switch (alg) {
    case HashAlg::sha1: return EVP_sha1();
    case HashAlg::sha256: return EVP_sha256();
    case HashAlg::sha384: return EVP_sha384();
    case HashAlg::sha512: return EVP_sha512();
    case HashAlg::sm3_256:
#ifndef OPENSSL_NO_SM3
      return EVP_sm3();
#else
      return nullptr;
#endif
  }
  return nullptr;
}

Bytes digest(HashAlg alg, ByteView data) {
  const EVP_MD* md = require_md(alg);
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1)
    throw std::runtime_error("digest failed: " + ossl::last_error());
  out.resize(len);
  return out;
}

Bytes hmac(HashAlg alg, ByteView key, ByteView data) {
  const EVP_MD* md = require_md(alg);
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  // HMAC() rejects a null key pointer even with length 0, so give it a valid address.
  static constexpr std::uint8_t kEmpty = 0;
  const void* key_ptr = key.empty() ? &kEmpty : key.data();
  if (HMAC(md, key_ptr, static_cast<int>(key.size()), data.empty() ? &kEmpty : data.data(), data.size(),
           out.data(), &len) == nullptr)
    throw std::runtime_error("HMAC failed: " + ossl::last_error());
  out.resize(len);
  return out;
}

}  // namespace kl::crypto
