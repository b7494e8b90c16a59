// Quotes and TPM2_Certify attestations produced by a software signer (EC and RSA keys made in the test),
// marshalled with tpm2-tss: ECDSA quotes, multi-block PCR blobs, and the AK <-> IAK binding.
#include <catch2/catch.hpp>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/certify_binding.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/attest/tpm/signature.hpp"

using kl::Bytes;
using kl::tpm::BindingError;

namespace {

kl::ossl::Pkey make_key(bool ec) {
  kl::ossl::Pkey k(ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  REQUIRE(k);
  return k;
}

// TPMT_SIGNATURE over `data` with the software key, as a TPM would produce it.
Bytes sign(EVP_PKEY* key, std::uint16_t sig_alg, kl::crypto::HashAlg hash, kl::ByteView data) {
  const Bytes digest = kl::crypto::digest(hash, data);
  kl::ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  REQUIRE(EVP_PKEY_sign_init(ctx.get()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_signature_md(ctx.get(), kl::crypto::evp_md(hash)) == 1);
  if (sig_alg == TPM2_ALG_RSAPSS) {
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1);
  } else if (sig_alg == TPM2_ALG_RSASSA) {
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
  }
  size_t len = 0;
  REQUIRE(EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) == 1);
  Bytes raw(len);
  REQUIRE(EVP_PKEY_sign(ctx.get(), raw.data(), &len, digest.data(), digest.size()) == 1);
  raw.resize(len);

  TPMT_SIGNATURE sig{};
  sig.sigAlg = sig_alg;
  const std::uint16_t tpm_hash = kl::crypto::tpm_alg_of(hash);
  if (sig_alg == TPM2_ALG_ECDSA) {
    const unsigned char* p = raw.data();
    std::unique_ptr<ECDSA_SIG, kl::ossl::Deleter<ECDSA_SIG_free>> es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(raw.size())));
    REQUIRE(es);
    sig.signature.ecdsa.hash = tpm_hash;
    sig.signature.ecdsa.signatureR.size = static_cast<UINT16>(BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), sig.signature.ecdsa.signatureR.buffer, 32));
    sig.signature.ecdsa.signatureS.size = static_cast<UINT16>(BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), sig.signature.ecdsa.signatureS.buffer, 32));
  } else {
    sig.signature.rsassa.hash = tpm_hash;  // rsapss has the same layout
    sig.signature.rsassa.sig.size = static_cast<UINT16>(raw.size());
    std::copy(raw.begin(), raw.end(), sig.signature.rsassa.sig.buffer);
  }
  Bytes out(sizeof(TPMT_SIGNATURE));
  size_t off = 0;
  REQUIRE(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, out.data(), out.size(), &off) == TSS2_RC_SUCCESS);
  out.resize(off);
  return out;
}

Bytes marshal_attest(const TPMS_ATTEST& a) {
  Bytes out(sizeof(TPMS_ATTEST) + 64);
  size_t off = 0;
  REQUIRE(Tss2_MU_TPMS_ATTEST_Marshal(&a, out.data(), out.size(), &off) == TSS2_RC_SUCCESS);
  out.resize(off);
  return out;
}

template <class T>
void fill(T& tpm2b, kl::ByteView data) {
  tpm2b.size = static_cast<UINT16>(data.size());
  std::copy(data.begin(), data.end(), tpm2b.buffer);
}
void fill(TPM2B_NAME& name, kl::ByteView data) {  // TPM2B_NAME calls its buffer "name"
  name.size = static_cast<UINT16>(data.size());
  std::copy(data.begin(), data.end(), name.name);
}

kl::Bytes name_of_key(EVP_PKEY* key) {
  auto area = kl::tpm::parse_tpm2b_public(kl::tpm::marshal_tpm2b_public(kl::tpm::tpmt_from_key(key, false)));
  return kl::tpm::name_of(area);
}

TPMS_ATTEST certify_attest(kl::ByteView qualifying, kl::ByteView certified_name) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_CERTIFY;
  fill(a.qualifiedSigner, kl::ByteView(Bytes(34, 0x11)));
  fill(a.extraData, qualifying);
  a.clockInfo.clock = 1234;
  a.clockInfo.safe = 1;
  a.firmwareVersion = 0x0102030405060708ull;
  fill(a.attested.certify.name, certified_name);
  fill(a.attested.certify.qualifiedName, kl::ByteView(Bytes(34, 0x22)));
  return a;
}

// A quote over `pcrs` (one bank) signed by `ak`, in the agent's wire form.
kl::quote::QuoteParts make_quote(EVP_PKEY* ak, std::uint16_t sig_alg, kl::crypto::HashAlg hash,
                                 const std::string& nonce, const kl::quote::PcrValues& pcrs) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  fill(a.qualifiedSigner, kl::ByteView(Bytes(34, 0x33)));
  fill(a.extraData, kl::as_bytes(nonce));
  a.clockInfo = {5000, 3, 1, 1};
  a.attested.quote.pcrSelect.count = 1;
  auto& sel = a.attested.quote.pcrSelect.pcrSelections[0];
  sel.hash = kl::crypto::tpm_alg_of(hash);
  sel.sizeofSelect = 3;
  Bytes concat;
  for (const auto& [pcr, v] : pcrs) {
    sel.pcrSelect[pcr / 8] |= static_cast<BYTE>(1u << (pcr % 8));
    concat.insert(concat.end(), v.begin(), v.end());
  }
  fill(a.attested.quote.pcrDigest, kl::crypto::digest(hash, concat));
  kl::quote::QuoteParts parts;
  parts.attest = marshal_attest(a);
  parts.signature = sign(ak, sig_alg, hash, parts.attest);
  parts.pcr_blob = kl::quote::make_pcr_blob(kl::crypto::tpm_alg_of(hash), pcrs);
  return parts;
}

kl::quote::PcrValues pcr_values(kl::crypto::HashAlg hash, std::initializer_list<std::uint32_t> numbers) {
  kl::quote::PcrValues v;
  for (auto n : numbers) v[n] = kl::crypto::digest(hash, kl::as_bytes(std::to_string(n)));
  return v;
}

}  // namespace

TEST_CASE("AK-IAK binding: both qualifying-data forms pass, tampering fails with the right error") {
  const std::string agent_id = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
  auto ak = make_key(false);
  const Bytes ak_name = name_of_key(ak.get());
  REQUIRE(ak_name.size() == 34);

  for (bool ec_iak : {true, false}) {
    auto iak = make_key(ec_iak);
    const std::uint16_t alg = ec_iak ? TPM2_ALG_ECDSA : TPM2_ALG_RSASSA;
    INFO((ec_iak ? "EC IAK" : "RSA IAK"));

    const Bytes hashed = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(agent_id));
    const Bytes attest26 = marshal_attest(certify_attest(hashed, ak_name));
    const Bytes sig26 = sign(iak.get(), alg, kl::crypto::HashAlg::sha256, attest26);
    CHECK(kl::tpm::verify_ak_iak_binding(attest26, sig26, iak.get(), ak_name, agent_id) == BindingError::none);

    const Bytes attest_old = marshal_attest(certify_attest(kl::as_bytes(agent_id), ak_name));
    const Bytes sig_old = sign(iak.get(), alg, kl::crypto::HashAlg::sha384, attest_old);
    CHECK(kl::tpm::verify_ak_iak_binding(attest_old, sig_old, iak.get(), ak_name, agent_id) == BindingError::none);

    CHECK(kl::tpm::verify_ak_iak_binding(attest26, sig26, iak.get(), ak_name, "another-agent") ==
          BindingError::qualifying_data_mismatch);

    Bytes other_name = ak_name;
    other_name.back() ^= 1;
    CHECK(kl::tpm::verify_ak_iak_binding(attest26, sig26, iak.get(), other_name, agent_id) ==
          BindingError::name_mismatch);

    Bytes flipped = attest26;
    flipped[flipped.size() - 10] ^= 0x01;  // inside qualifiedName (the last field): still well formed
    CHECK(kl::tpm::verify_ak_iak_binding(flipped, sig26, iak.get(), ak_name, agent_id) == BindingError::bad_signature);

    Bytes bad_sig = sig26;
    bad_sig.back() ^= 0x01;
    CHECK(kl::tpm::verify_ak_iak_binding(attest26, bad_sig, iak.get(), ak_name, agent_id) ==
          BindingError::bad_signature);

    // Signed by a key other than the IAK.
    auto stranger = make_key(ec_iak);
    CHECK(kl::tpm::verify_ak_iak_binding(attest26, sig26, stranger.get(), ak_name, agent_id) ==
          BindingError::bad_signature);

    Bytes wrong_magic = attest26;
    wrong_magic[0] = 0x00;
    CHECK(kl::tpm::verify_ak_iak_binding(wrong_magic, sig26, iak.get(), ak_name, agent_id) ==
          BindingError::wrong_magic_or_type);

    Bytes truncated(attest26.begin(), attest26.end() - 5);
    CHECK(kl::tpm::verify_ak_iak_binding(truncated, sig26, iak.get(), ak_name, agent_id) == BindingError::malformed);
    CHECK(kl::tpm::verify_ak_iak_binding(attest26, Bytes{0x00, 0x14}, iak.get(), ak_name, agent_id) ==
          BindingError::malformed);
  }

  SECTION("RSAPSS IAK signature (salt = digest size) is accepted") {
    auto iak = make_key(false);
    const Bytes hashed = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(agent_id));
    const Bytes attest = marshal_attest(certify_attest(hashed, ak_name));
    const Bytes sig = sign(iak.get(), TPM2_ALG_RSAPSS, kl::crypto::HashAlg::sha256, attest);
    CHECK(kl::tpm::verify_ak_iak_binding(attest, sig, iak.get(), ak_name, agent_id) == BindingError::none);
  }

  SECTION("a quote is not a certification") {
    auto iak = make_key(true);
    auto parts = make_quote(iak.get(), TPM2_ALG_ECDSA, kl::crypto::HashAlg::sha256, agent_id,
                            pcr_values(kl::crypto::HashAlg::sha256, {16}));
    CHECK(kl::tpm::verify_ak_iak_binding(parts.attest, parts.signature, iak.get(), ak_name, agent_id) ==
          BindingError::wrong_magic_or_type);
  }
}

TEST_CASE("parse_attest reads a TPM2_Certify structure marshalled by tpm2-tss") {
  const Bytes name(34, 0x44);
  auto a = kl::tpm::parse_attest(marshal_attest(certify_attest(kl::as_bytes("qd"), name)));
  CHECK(a.magic == kl::tpm::kTpmGeneratedValue);
  CHECK(a.type == kl::tpm::kStAttestCertify);
  CHECK(kl::as_string(a.extra_data) == "qd");
  CHECK(a.certified_name == name);
  CHECK(a.certified_qualified_name == Bytes(34, 0x22));
  CHECK(a.clock.clock == 1234);
  CHECK(a.clock.safe);
  CHECK(a.firmware_version == 0x0102030405060708ull);
  CHECK(a.qualified_signer == Bytes(34, 0x11));
}

TEST_CASE("software ECDSA and RSA quotes verify - scheme and key type must match") {
  const std::string nonce = "Ai5M5SjYjnkyv4P7itH1";
  for (auto hash : {kl::crypto::HashAlg::sha1, kl::crypto::HashAlg::sha256, kl::crypto::HashAlg::sha384,
                    kl::crypto::HashAlg::sha512}) {
    auto ec = make_key(true);
    auto parts = make_quote(ec.get(), TPM2_ALG_ECDSA, hash, nonce, pcr_values(hash, {0, 7, 16}));
    INFO(std::string(kl::crypto::hash_name(hash)));
    auto r = kl::quote::verify_quote(parts, nonce, kl::crypto::hash_name(hash), ec.get());
    CHECK(r.error.empty());
    REQUIRE(r.ok());
    CHECK(r.quote->pcrs == pcr_values(hash, {0, 7, 16}));
    CHECK(r.quote->clock.reset_count == 3);
    CHECK(r.quote->clock.restart_count == 1);
  }

  auto rsa = make_key(false);
  SECTION("RSAPSS quotes are refused even with a valid signature") {
    auto parts = make_quote(rsa.get(), TPM2_ALG_RSAPSS, kl::crypto::HashAlg::sha256, nonce,
                            pcr_values(kl::crypto::HashAlg::sha256, {16}));
    CHECK(kl::quote::verify_quote(parts, nonce, "sha256", rsa.get()).error ==
          "Unsupported quote signature algorithm '0x16' for RSA keys");
  }
  SECTION("ECDSA signature with an RSA AK") {
    auto ec = make_key(true);
    auto parts = make_quote(ec.get(), TPM2_ALG_ECDSA, kl::crypto::HashAlg::sha256, nonce,
                            pcr_values(kl::crypto::HashAlg::sha256, {16}));
    CHECK(kl::quote::verify_quote(parts, nonce, "sha256", rsa.get()).error ==
          "Unsupported quote signature algorithm '0x18' for RSA keys");
    CHECK(kl::quote::verify_quote(parts, nonce, "sha256", ec.get()).ok());
  }
  SECTION("RSASSA signature with an EC AK") {
    auto ec = make_key(true);
    auto parts = make_quote(rsa.get(), TPM2_ALG_RSASSA, kl::crypto::HashAlg::sha256, nonce,
                            pcr_values(kl::crypto::HashAlg::sha256, {16}));
    CHECK(kl::quote::verify_quote(parts, nonce, "sha256", ec.get()).error ==
          "Unsupported quote signature algorithm '0x14' for EC keys");
  }
}

TEST_CASE("PCR blobs with several TPML_DIGEST blocks (more than 8 PCRs)") {
  const auto hash = kl::crypto::HashAlg::sha256;
  auto values = pcr_values(hash, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 23});
  auto blob = kl::quote::make_pcr_blob(0x000B, values);
  CHECK(blob.size() == 132 + 4 + 2 * 532);
  auto parsed = kl::quote::parse_pcr_blob(blob);
  CHECK(parsed.values.size() == values.size());
  auto bank = kl::quote::hash_pcr_bank(parsed, 0x000B);
  CHECK(bank.pcrs == values);

  auto key = make_key(true);
  auto parts = make_quote(key.get(), TPM2_ALG_ECDSA, hash, "n0nce", values);
  auto r = kl::quote::verify_quote(parts, "n0nce", "sha256", key.get());
  REQUIRE(r.ok());
  CHECK(r.quote->pcrs == values);

  SECTION("PCR value changed after quoting") {
    auto tampered = values;
    tampered[15][0] ^= 1;
    parts.pcr_blob = kl::quote::make_pcr_blob(0x000B, tampered);
    CHECK(kl::quote::verify_quote(parts, "n0nce", "sha256", key.get()).error ==
          "The digest used for quoting is different than the one that was calculated");
  }
  SECTION("a PCR dropped from the blob") {
    auto fewer = values;
    fewer.erase(23);
    parts.pcr_blob = kl::quote::make_pcr_blob(0x000B, fewer);
    CHECK(kl::quote::verify_quote(parts, "n0nce", "sha256", key.get()).error ==
          "The digest used for quoting is different than the one that was calculated");
  }
}
