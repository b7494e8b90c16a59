// Software MakeCredential / ActivateCredential: round trips over EK kinds, blob layout, tampering.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/activate_credential.hpp"
#include "common/attest/tpm/make_credential.hpp"

using namespace kl;

namespace {

const std::filesystem::path kTools = std::filesystem::path(KL_TESTDATA_DIR) / "keylime/tpm/tpm2-tools-files";

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

struct SoftKey {
  ossl::Pkey key;
  tpm::PublicArea area;
};

ossl::Pkey generate(const std::string& kind) {
  EVP_PKEY* k = nullptr;
  if (kind == "rsa2048") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  if (kind == "rsa3072") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072});
  if (kind == "p256") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "prime256v1");
  if (kind == "p384") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp384r1");
  if (kind == "p521") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp521r1");
  REQUIRE(k != nullptr);
  return ossl::Pkey(k);
}

SoftKey make_key(const std::string& kind, bool ek, TPM2_ALG_ID name_alg = TPM2_ALG_SHA256,
                 std::uint16_t aes_bits = 128) {
  SoftKey s{generate(kind), {}};
  TPMT_PUBLIC t = tpm::tpmt_from_key(s.key.get(), ek);
  t.nameAlg = name_alg;
  if (ek) {
    if (t.type == TPM2_ALG_RSA) t.parameters.rsaDetail.symmetric.keyBits.aes = aes_bits;
    else t.parameters.eccDetail.symmetric.keyBits.aes = aes_bits;
  }
  s.area = tpm::parse_tpm2b_public(tpm::marshal_tpm2b_public(t));
  return s;
}

std::uint16_t be16(const Bytes& b, std::size_t at) { return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]); }

}  // namespace

TEST_CASE("random_challenge: 32 alphanumeric characters, fresh each time", "[make_credential]") {
  const std::string a = tpm::random_challenge(), b = tpm::random_challenge();
  CHECK(a.size() == 32);
  CHECK(std::all_of(a.begin(), a.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  }));
  CHECK(a != b);
}

TEST_CASE("make_credential -> activate_credential_software round trip", "[make_credential]") {
  struct Case { const char* kind; TPM2_ALG_ID name_alg; std::uint16_t aes; std::size_t secret_len; };
  const Case cases[] = {
      {"rsa2048", TPM2_ALG_SHA256, 128, 256},     {"rsa3072", TPM2_ALG_SHA256, 128, 384},
      {"p256", TPM2_ALG_SHA256, 128, 2 + 32 + 2 + 32}, {"p384", TPM2_ALG_SHA256, 128, 2 + 48 + 2 + 48},
      {"p384", TPM2_ALG_SHA384, 256, 2 + 48 + 2 + 48}, {"p521", TPM2_ALG_SHA512, 256, 2 + 66 + 2 + 66},
      {"rsa2048", TPM2_ALG_SHA1, 128, 256},       {"rsa3072", TPM2_ALG_SHA384, 256, 384},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.kind << " nameAlg " << c.name_alg << " aes" << c.aes) {
      const SoftKey ek = make_key(c.kind, true, c.name_alg, c.aes);
      const SoftKey ak = make_key("rsa2048", false);
      const Bytes ak_name = tpm::name_of(ak.area);
      const std::string challenge = tpm::random_challenge();
      const std::size_t dsize = c.name_alg == TPM2_ALG_SHA1 ? 20 : c.name_alg == TPM2_ALG_SHA384 ? 48
                                : c.name_alg == TPM2_ALG_SHA512 ? 64 : 32;
      // A SHA-1 EK can carry at most a 20-byte credential (TPM2_MakeCredential's limit).
      const std::string cred = challenge.substr(0, std::min<std::size_t>(32, dsize));

      const Bytes blob = tpm::make_credential(ek.area, ak_name, as_bytes(cred));
      // Layout: magic | version | TPM2B_ID_OBJECT(TPM2B hmac | encIdentity) | TPM2B secret.
      REQUIRE(blob.size() > 12);
      CHECK(hex_encode(ByteView(blob).first(8)) == "badcc0de00000001");
      const std::size_t id_len = be16(blob, 8);
      CHECK(be16(blob, 10) == dsize);
      CHECK(id_len == 2 + dsize + 2 + cred.size());
      CHECK(be16(blob, 10 + id_len) == c.secret_len);
      CHECK(blob.size() == 8 + 2 + id_len + 2 + c.secret_len);

      CHECK(as_string(tpm::activate_credential_software(ek.key.get(), ek.area, ak_name, blob)) == cred);

      // Fresh seed every time: the same inputs never give the same blob.
      CHECK(tpm::make_credential(ek.area, ak_name, as_bytes(cred)) != blob);

      // A different AK name, a different EK private key, or any flipped byte is refused.
      Bytes other_name = ak_name;
      other_name.back() ^= 1;
      CHECK_THROWS_WITH(tpm::activate_credential_software(ek.key.get(), ek.area, other_name, blob),
                        Catch::Contains("integrity"));
      const SoftKey other_ek = make_key(c.kind, true, c.name_alg, c.aes);
      CHECK_THROWS_AS(tpm::activate_credential_software(other_ek.key.get(), ek.area, ak_name, blob),
                      std::runtime_error);
      for (std::size_t i = 12; i < blob.size(); i += 7) {
        Bytes t = blob;
        t[i] ^= 0x40;
        CHECK_THROWS_AS(tpm::activate_credential_software(ek.key.get(), ek.area, ak_name, t), std::runtime_error);
      }
    }
  }
}

TEST_CASE("activate_credential_software rejects malformed blobs without crashing", "[make_credential]") {
  const SoftKey ek = make_key("p256", true);
  const SoftKey ak = make_key("p256", false);
  const Bytes name = tpm::name_of(ak.area);
  const Bytes blob = tpm::make_credential(ek.area, name, as_bytes("0123456789abcdefghijABCDEFGHIJkl"));
  for (std::size_t len = 0; len < blob.size(); ++len)
    CHECK_THROWS_AS(tpm::activate_credential_software(ek.key.get(), ek.area, name, ByteView(blob).first(len)),
                    std::runtime_error);
  Bytes extra = blob;
  extra.push_back(0);
  CHECK_THROWS_WITH(tpm::activate_credential_software(ek.key.get(), ek.area, name, extra), Catch::Contains("trailing"));
  Bytes magic = blob;
  magic[0] = 0;
  CHECK_THROWS_WITH(tpm::activate_credential_software(ek.key.get(), ek.area, name, magic), Catch::Contains("magic"));
  Bytes version = blob;
  version[7] = 2;
  CHECK_THROWS_WITH(tpm::activate_credential_software(ek.key.get(), ek.area, name, version), Catch::Contains("version"));
  CHECK_THROWS_AS(tpm::activate_credential_software(ek.key.get(), ek.area, name, Bytes(500, 0xAB)), std::runtime_error);
}

TEST_CASE("make_credential refuses EKs it cannot use", "[make_credential]") {
  const SoftKey ak = make_key("rsa2048", false);
  const Bytes name = tpm::name_of(ak.area);
  const auto cred = as_bytes("0123456789abcdefghijABCDEFGHIJkl");

  // A signing key has no symmetric definition.
  CHECK_THROWS_WITH(tpm::make_credential(ak.area, name, cred), Catch::Contains("AES"));

  SoftKey ek = make_key("rsa2048", true);
  tpm::PublicArea bad = ek.area;
  bad.tpmt.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_SM4;
  CHECK_THROWS_AS(tpm::make_credential(bad, name, cred), ParseError);
  bad = ek.area;
  bad.tpmt.parameters.rsaDetail.symmetric.keyBits.aes = 64;
  CHECK_THROWS_AS(tpm::make_credential(bad, name, cred), ParseError);
  bad = ek.area;
  bad.tpmt.nameAlg = TPM2_ALG_SM3_256;
  CHECK_THROWS_AS(tpm::make_credential(bad, name, cred), ParseError);
  bad = ek.area;
  bad.tpmt.type = TPM2_ALG_KEYEDHASH;
  CHECK_THROWS_AS(tpm::make_credential(bad, name, cred), ParseError);

  SoftKey ecc_ek = make_key("p256", true);
  bad = ecc_ek.area;
  bad.tpmt.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
  CHECK_THROWS_AS(tpm::make_credential(bad, name, cred), ParseError);

  // Caller errors: credential larger than the EK's digest, empty name.
  CHECK_THROWS_AS(tpm::make_credential(ek.area, name, Bytes(33, 'a')), std::invalid_argument);
  CHECK_THROWS_AS(tpm::make_credential(ek.area, {}, cred), std::invalid_argument);
}

TEST_CASE("blob for the tpm2-tools EK has the layout of tpm2_makecredential's output", "[make_credential]") {
  // mkcred.out was made by tpm2_makecredential for ek.pub with the 9-byte secret.data; ours must have
  // exactly the same shape (only the random parts differ).
  const auto ek = tpm::parse_tpm2b_public(read_file(kTools / "ek.pub"));
  const Bytes reference = read_file(kTools / "mkcred.out");
  const Bytes secret = read_file(kTools / "secret.data");
  const Bytes name = read_file(kTools / "ak.name");
  const Bytes ours = tpm::make_credential(ek, name, secret);
  REQUIRE(ours.size() == reference.size());
  CHECK(hex_encode(ByteView(ours).first(12)) == hex_encode(ByteView(reference).first(12)));
  CHECK(be16(ours, 8 + 2 + 45) == be16(reference, 8 + 2 + 45));
}
