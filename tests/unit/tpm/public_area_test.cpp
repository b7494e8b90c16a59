// TPM2B_PUBLIC parsing, names and key conversion, on real tpm2-tools / registrar samples and broken input.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>

#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/public_area.hpp"

using namespace kl;

namespace {

const std::filesystem::path kTools = std::filesystem::path(KL_TESTDATA_DIR) / "keylime/tpm/tpm2-tools-files";

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

ossl::Pkey read_pem_pubkey(const std::filesystem::path& p) {
  const Bytes pem = read_file(p);
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  return key;
}

nlohmann::json registrar_sample() {
  std::ifstream in(std::filesystem::path(KL_TESTDATA_DIR) / "keylime-db/registrar-get-agent-v2.1.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in)["results"];
}

Bytes b64(const std::string& s) {
  auto v = base64_decode(s);
  REQUIRE(v.has_value());
  return *v;
}

// Sets the TPM2B size prefix to `size` without touching the body.
Bytes with_size(Bytes b, std::size_t size) {
  b[0] = static_cast<std::uint8_t>(size >> 8);
  b[1] = static_cast<std::uint8_t>(size);
  return b;
}

}  // namespace

TEST_CASE("tpm2-tools AK sample: name and public key", "[public_area]") {
  const Bytes raw = read_file(kTools / "ak.pub");
  const tpm::PublicArea ak = tpm::parse_tpm2b_public(raw);
  CHECK(ak.tpmt.type == TPM2_ALG_RSA);
  CHECK(ak.tpmt.nameAlg == TPM2_ALG_SHA256);
  CHECK(ak.tpmt.objectAttributes == 0x00050072);
  CHECK(ak.tpmt.parameters.rsaDetail.keyBits == 2048);
  CHECK(ak.tpmt_bytes == Bytes(raw.begin() + 2, raw.end()));

  CHECK(hex_encode(tpm::name_of(ak)) == hex_encode(read_file(kTools / "ak.name")));

  auto key = tpm::public_key(ak);
  auto expected = read_pem_pubkey(kTools / "akpub.pem");
  CHECK(tpm::spki_der(key.get()) == tpm::spki_der(expected.get()));
  CHECK(EVP_PKEY_eq(key.get(), expected.get()) == 1);
}

TEST_CASE("tpm2-tools EK sample: public key matches ekpub.pem", "[public_area]") {
  const tpm::PublicArea ek = tpm::parse_tpm2b_public(read_file(kTools / "ek.pub"));
  CHECK(ek.tpmt.objectAttributes == 0x000300B2);
  CHECK(ek.tpmt.parameters.rsaDetail.symmetric.algorithm == TPM2_ALG_AES);
  auto key = tpm::public_key(ek);
  auto expected = read_pem_pubkey(kTools / "ekpub.pem");
  CHECK(tpm::spki_der(key.get()) == tpm::spki_der(expected.get()));
  // A different key must not compare equal.
  CHECK(tpm::spki_der(key.get()) != tpm::spki_der(read_pem_pubkey(kTools / "akpub.pem").get()));
}

TEST_CASE("tpmt_from_key reproduces real TPM public areas byte for byte", "[public_area]") {
  // The TPM's RSA-2048 EK (TCG default template) and a tpm2_createak RSA AK, rebuilt from their PEM keys.
  auto ek_key = read_pem_pubkey(kTools / "ekpub.pem");
  CHECK(hex_encode(tpm::marshal_tpm2b_public(tpm::tpmt_from_key(ek_key.get(), true))) ==
        hex_encode(read_file(kTools / "ek.pub")));
  auto ak_key = read_pem_pubkey(kTools / "akpub.pem");
  CHECK(hex_encode(tpm::marshal_tpm2b_public(tpm::tpmt_from_key(ak_key.get(), false))) ==
        hex_encode(read_file(kTools / "ak.pub")));
}

TEST_CASE("registrar sample: ek_tpm matches ekcert, aik_tpm parses", "[public_area]") {
  const auto j = registrar_sample();
  const tpm::PublicArea ek = tpm::parse_tpm2b_public(b64(j["ek_tpm"].get<std::string>()));
  const tpm::PublicArea ak = tpm::parse_tpm2b_public(b64(j["aik_tpm"].get<std::string>()));
  CHECK(ak.tpmt.objectAttributes == 0x00050072);
  CHECK(tpm::name_of(ak).size() == 34);
  CHECK(tpm::name_of(ak)[0] == 0x00);
  CHECK(tpm::name_of(ak)[1] == 0x0B);

  const Bytes cert_der = b64(j["ekcert"].get<std::string>());
  const unsigned char* p = cert_der.data();
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(cert_der.size())));
  REQUIRE(cert);
  auto ek_key = tpm::public_key(ek);
  CHECK(tpm::spki_der(ek_key.get()) == tpm::spki_der(X509_get0_pubkey(cert.get())));
  CHECK(tpm::spki_der(tpm::public_key(ak).get()) != tpm::spki_der(X509_get0_pubkey(cert.get())));
}

TEST_CASE("malformed TPM2B_PUBLIC is a ParseError", "[public_area]") {
  const Bytes good = read_file(kTools / "ak.pub");
  REQUIRE_NOTHROW(tpm::parse_tpm2b_public(good));

  SECTION("empty and one byte") {
    CHECK_THROWS_AS(tpm::parse_tpm2b_public({}), ParseError);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(Bytes{0x01}), ParseError);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(Bytes{0x00, 0x00}), ParseError);
  }
  SECTION("truncated without fixing the size") {
    const Bytes t(good.begin(), good.end() - 1);
    CHECK_THROWS_WITH(tpm::parse_tpm2b_public(t), Catch::Contains("does not match"));
  }
  SECTION("every truncation with a consistent size field still fails") {
    for (std::size_t len = 2; len < good.size(); ++len) {
      const Bytes t = with_size(Bytes(good.begin(), good.begin() + static_cast<long>(len)), len - 2);
      CHECK_THROWS_AS(tpm::parse_tpm2b_public(t), ParseError);
    }
  }
  SECTION("size field too big or too small") {
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(with_size(good, good.size() - 1)), ParseError);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(with_size(good, good.size() - 3)), ParseError);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(with_size(good, 0xFFFF)), ParseError);
  }
  SECTION("trailing bytes") {
    Bytes t = good;
    t.push_back(0);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(t), ParseError);  // size field now short
    CHECK_THROWS_WITH(tpm::parse_tpm2b_public(with_size(t, t.size() - 2)), Catch::Contains("trailing"));
  }
  SECTION("oversized") {
    Bytes big = good;
    big.resize(2049, 0);
    CHECK_THROWS_WITH(tpm::parse_tpm2b_public(with_size(big, big.size() - 2)), Catch::Contains("2048"));
  }
  SECTION("garbage") {
    Bytes g(300, 0xFF);
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(with_size(g, 298)), ParseError);
    Bytes text(as_bytes("-----BEGIN PUBLIC KEY-----").begin(), as_bytes("-----BEGIN PUBLIC KEY-----").end());
    CHECK_THROWS_AS(tpm::parse_tpm2b_public(text), ParseError);
  }
}

TEST_CASE("public_key and name_of reject what they cannot use", "[public_area]") {
  const tpm::PublicArea good = tpm::parse_tpm2b_public(read_file(kTools / "ak.pub"));

  SECTION("keyedhash object") {
    TPMT_PUBLIC t{};
    t.type = TPM2_ALG_KEYEDHASH;
    t.nameAlg = TPM2_ALG_SHA256;
    t.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    t.unique.keyedHash.size = 32;
    const auto area = tpm::parse_tpm2b_public(tpm::marshal_tpm2b_public(t));
    CHECK_THROWS_WITH(tpm::public_key(area), Catch::Contains("neither an RSA nor an ECC"));
    CHECK(tpm::name_of(area).size() == 34);
  }
  SECTION("unknown nameAlg") {
    tpm::PublicArea a = good;
    a.tpmt.nameAlg = TPM2_ALG_NULL;
    CHECK_THROWS_AS(tpm::name_of(a), ParseError);
  }
  SECTION("RSA with empty or even modulus") {
    tpm::PublicArea a = good;
    a.tpmt.unique.rsa.size = 0;
    CHECK_THROWS_AS(tpm::public_key(a), ParseError);
    a = good;
    a.tpmt.unique.rsa.buffer[a.tpmt.unique.rsa.size - 1] &= 0xFE;
    CHECK_THROWS_AS(tpm::public_key(a), ParseError);
  }
  SECTION("ECC: unsupported curve, oversized coordinate, point off the curve") {
    ossl::Pkey ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "prime256v1"));
    REQUIRE(ec);
    const TPMT_PUBLIC t = tpm::tpmt_from_key(ec.get(), false);
    tpm::PublicArea a = tpm::parse_tpm2b_public(tpm::marshal_tpm2b_public(t));
    REQUIRE(tpm::spki_der(tpm::public_key(a).get()) == tpm::spki_der(ec.get()));

    tpm::PublicArea bad = a;
    bad.tpmt.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    CHECK_THROWS_WITH(tpm::public_key(bad), Catch::Contains("unsupported curve"));
    bad = a;
    bad.tpmt.unique.ecc.x.size = 33;
    CHECK_THROWS_AS(tpm::public_key(bad), ParseError);
    bad = a;
    bad.tpmt.unique.ecc.y.buffer[31] ^= 0x01;
    CHECK_THROWS_AS(tpm::public_key(bad), ParseError);
  }
}

TEST_CASE("tpmt_from_key round-trips software keys", "[public_area]") {
  struct Case { const char* type; const char* arg; std::size_t bits; };
  for (const auto& c : {Case{"RSA", nullptr, 2048}, Case{"RSA", nullptr, 3072}, Case{"EC", "prime256v1", 0},
                        Case{"EC", "secp384r1", 0}, Case{"EC", "secp521r1", 0}}) {
    ossl::Pkey key(c.arg ? EVP_PKEY_Q_keygen(nullptr, nullptr, c.type, c.arg)
                         : EVP_PKEY_Q_keygen(nullptr, nullptr, c.type, c.bits));
    REQUIRE(key);
    for (bool ek : {true, false}) {
      const TPMT_PUBLIC t = tpm::tpmt_from_key(key.get(), ek);
      const auto area = tpm::parse_tpm2b_public(tpm::marshal_tpm2b_public(t));
      CHECK(area.tpmt.objectAttributes == (ek ? 0x000300B2u : 0x00050072u));
      CHECK(area.tpmt.authPolicy.size == (ek ? 32 : 0));
      CHECK(tpm::spki_der(tpm::public_key(area).get()) == tpm::spki_der(key.get()));
    }
  }
  ossl::Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(ed);
  CHECK_THROWS_AS(tpm::tpmt_from_key(ed.get(), false), std::invalid_argument);
  ossl::Pkey k256(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
  REQUIRE(k256);
  CHECK_THROWS_AS(tpm::tpmt_from_key(k256.get(), true), std::invalid_argument);
}
