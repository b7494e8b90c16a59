// KDFa / KDFe: fixed vectors plus a cross-check against OpenSSL's own SP800-108 (KBKDF) and
// SP800-56C single-step (SSKDF) implementations, which are written independently of ours.
#include <catch2/catch.hpp>

#include <string>

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "common/attest/crypto/ossl.hpp"
#include "common/attest/crypto/random.hpp"
#include "common/attest/tpm/kdf.hpp"

using namespace kl;
using kl::crypto::HashAlg;

namespace {

using KdfPtr = std::unique_ptr<EVP_KDF, ossl::Deleter<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, ossl::Deleter<EVP_KDF_CTX_free>>;

Bytes ossl_derive(const char* kdf_name, OSSL_PARAM* params, std::size_t out_len) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, kdf_name, nullptr));
  REQUIRE(kdf);
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  REQUIRE(ctx);
  Bytes out(out_len);
  REQUIRE(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) == 1);
  return out;
}

// SP800-108 counter mode with HMAC, 32-bit counter, "label || 0x00 || context || L": the TPM's KDFa.
// OpenSSL inserts the 0x00 separator itself, so the label goes in without its NUL.
Bytes openssl_kbkdf(const char* md, ByteView key, std::string label, Bytes context, std::size_t out_len) {
  std::string mode = "counter", mac = "HMAC", digest = md;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label.data(), label.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context.data(), context.size()),
      OSSL_PARAM_construct_end()};
  return ossl_derive("KBKDF", params, out_len);
}

// SP800-56C single-step with a hash: H(counter || Z || FixedInfo), FixedInfo = label || 0 || U || V: KDFe.
Bytes openssl_sskdf(const char* md, ByteView z, Bytes fixed_info, std::size_t out_len) {
  std::string digest = md;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(z.data()), z.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, fixed_info.data(), fixed_info.size()),
      OSSL_PARAM_construct_end()};
  return ossl_derive("SSKDF", params, out_len);
}

Bytes seq(std::uint8_t from, std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(from + i);
  return b;
}

Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("KDFa fixed vectors", "[kdf]") {
  const Bytes key = seq(0, 32);
  const Bytes name = cat({Bytes{0x00, 0x0B}, seq(0x40, 32)});
  CHECK(hex_encode(tpm::kdfa(HashAlg::sha256, key, "STORAGE", name, {}, 128)) == "7a58c2079bee13e00ed160d657aecaef");
  CHECK(hex_encode(tpm::kdfa(HashAlg::sha256, key, "INTEGRITY", {}, {}, 256)) ==
        "bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e");
  CHECK(hex_encode(tpm::kdfa(HashAlg::sha384, key, "STORAGE", name, {}, 256)) ==
        "27a39b7132f79c85794a8aa3698e6301c2a8f30908547eff122f16f5348f313b");
  // Multi-block output whose bit count is not a byte multiple: the top 4 bits of byte 0 are cleared.
  CHECK(hex_encode(tpm::kdfa(HashAlg::sha1, key, "KDF", as_bytes("abc"), as_bytes("def"), 300)) ==
        "0d2b300b63343880d3a8c314bb1a4ea3d72eae61a4ee9979faf38142d2233e5bcfc2b67feced");
  // A label already carrying its NUL is not given a second one.
  CHECK(tpm::kdfa(HashAlg::sha256, key, std::string_view("STORAGE\0", 8), name, {}, 128) ==
        tpm::kdfa(HashAlg::sha256, key, "STORAGE", name, {}, 128));
  CHECK_THROWS_AS(tpm::kdfa(HashAlg::sha256, key, "X", {}, {}, 0), std::invalid_argument);
}

TEST_CASE("KDFa agrees with OpenSSL KBKDF (SP800-108 counter mode)", "[kdf]") {
  struct Case { HashAlg alg; const char* md; };
  for (auto c : {Case{HashAlg::sha1, "SHA1"}, Case{HashAlg::sha256, "SHA256"}, Case{HashAlg::sha384, "SHA384"},
                 Case{HashAlg::sha512, "SHA512"}}) {
    for (std::uint32_t bytes : {16u, 32u, 48u, 100u}) {
      const Bytes key = crypto::random_bytes(crypto::digest_size(c.alg));
      const Bytes u = crypto::random_bytes(34), v = crypto::random_bytes(7);
      const Bytes ours = tpm::kdfa(c.alg, key, "STORAGE", u, v, bytes * 8);
      const Bytes theirs = openssl_kbkdf(c.md, key, "STORAGE", cat({u, v}), bytes);
      CHECK(hex_encode(ours) == hex_encode(theirs));
    }
  }
}

TEST_CASE("KDFe fixed vector and agreement with OpenSSL SSKDF", "[kdf]") {
  CHECK(hex_encode(tpm::kdfe(HashAlg::sha256, seq(0, 32), "IDENTITY", seq(1, 32), seq(2, 32), 256)) ==
        "87299af962a78eb3facd86dfc543038393f5e03d84aa180e69b11304f4e31c90");
  struct Case { HashAlg alg; const char* md; };
  for (auto c : {Case{HashAlg::sha1, "SHA1"}, Case{HashAlg::sha256, "SHA256"}, Case{HashAlg::sha384, "SHA384"},
                 Case{HashAlg::sha512, "SHA512"}}) {
    const Bytes z = crypto::random_bytes(48), u = crypto::random_bytes(48), v = crypto::random_bytes(48);
    for (std::uint32_t bytes : {20u, 32u, 80u}) {
      const Bytes ours = tpm::kdfe(c.alg, z, "IDENTITY", u, v, bytes * 8);
      const Bytes theirs = openssl_sskdf(c.md, z, cat({as_bytes(std::string_view("IDENTITY\0", 9)), u, v}), bytes);
      CHECK(hex_encode(ours) == hex_encode(theirs));
    }
  }
}
