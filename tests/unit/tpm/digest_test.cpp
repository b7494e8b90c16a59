// Hash registry and one-shot digest/HMAC against published known answers.
#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/random.hpp"

using namespace kl;
using kl::crypto::HashAlg;

TEST_CASE("hash names and TPM ids map both ways", "[digest]") {
  CHECK(crypto::hash_from_name("sha256") == HashAlg::sha256);
  CHECK(crypto::hash_from_name("sm3_256") == HashAlg::sm3_256);
  CHECK_FALSE(crypto::hash_from_name("SHA256").has_value());
  CHECK_FALSE(crypto::hash_from_name("md5").has_value());
  CHECK_FALSE(crypto::hash_from_name("").has_value());
  CHECK(crypto::hash_from_tpm_alg(0x000B) == HashAlg::sha256);
  CHECK(crypto::hash_from_tpm_alg(0x0004) == HashAlg::sha1);
  CHECK(crypto::hash_from_tpm_alg(0x000C) == HashAlg::sha384);
  CHECK(crypto::hash_from_tpm_alg(0x000D) == HashAlg::sha512);
  CHECK(crypto::hash_from_tpm_alg(0x0012) == HashAlg::sm3_256);
  CHECK_FALSE(crypto::hash_from_tpm_alg(0x0010).has_value());  // TPM_ALG_NULL
  for (auto alg : {HashAlg::sha1, HashAlg::sha256, HashAlg::sha384, HashAlg::sha512, HashAlg::sm3_256}) {
    CHECK(crypto::hash_from_name(crypto::hash_name(alg)) == alg);
    CHECK(crypto::hash_from_tpm_alg(crypto::tpm_alg_of(alg)) == alg);
  }
  CHECK(crypto::digest_size(HashAlg::sha1) == 20);
  CHECK(crypto::digest_size(HashAlg::sha384) == 48);
  CHECK(crypto::digest_size(HashAlg::sm3_256) == 32);
}

TEST_CASE("digest matches FIPS 180 known answers for \"abc\"", "[digest]") {
  const auto abc = as_bytes("abc");
  CHECK(hex_encode(crypto::digest(HashAlg::sha1, abc)) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex_encode(crypto::digest(HashAlg::sha256, abc)) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_encode(crypto::digest(HashAlg::sha384, abc)) ==
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  CHECK(hex_encode(crypto::digest(HashAlg::sha512, {})) ==
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  if (crypto::evp_md(HashAlg::sm3_256) != nullptr) {
    // GB/T 32905-2016 example 1.
    CHECK(hex_encode(crypto::digest(HashAlg::sm3_256, abc)) ==
          "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  } else {
    WARN("OpenSSL has no SM3: digest(sm3_256) must throw");
    CHECK_THROWS_AS(crypto::digest(HashAlg::sm3_256, abc), std::runtime_error);
  }
}

TEST_CASE("hmac matches RFC 4231 test case 2", "[digest]") {
  const auto key = as_bytes("Jefe");
  const auto msg = as_bytes("what do ya want for nothing?");
  CHECK(hex_encode(crypto::hmac(HashAlg::sha256, key, msg)) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hex_encode(crypto::hmac(HashAlg::sha384, key, msg)) ==
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649");
  // Empty key and empty message are legal and deterministic (RFC 2104 pads the key with zeros).
  CHECK(hex_encode(crypto::hmac(HashAlg::sha256, {}, {})) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("random_bytes returns the requested length and differs between calls", "[random]") {
  CHECK(crypto::random_bytes(0).empty());
  const Bytes a = crypto::random_bytes(32);
  const Bytes b = crypto::random_bytes(32);
  CHECK(a.size() == 32);
  CHECK(a != b);
}
