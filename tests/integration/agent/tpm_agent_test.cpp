// TpmAgent against a real swtpm manufactured by swtpm_setup with a private local CA.
#include <catch2/catch.hpp>

#include <openssl/x509_vfy.h>

#include <fstream>

#include "agent/registration.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/make_credential.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "support/cert_issue.hpp"
#include "support/swtpm.hpp"

using namespace kl::testing;

namespace {

// Verifies `der` against every PEM in `store_dir` (optionally accepting an intermediate as trust anchor).
// Returns the OpenSSL verify error text, empty on success.
std::string verify_chain(kl::ByteView der, const std::filesystem::path& store_dir, bool partial_chain,
                         const std::vector<std::string>& only_files = {}) {
  auto cert = cert_from_der(der);
  if (!cert) return "not a certificate";
  kl::ossl::X509Store store(X509_STORE_new());
  for (const auto& entry : std::filesystem::directory_iterator(store_dir)) {
    if (!only_files.empty() &&
        std::find(only_files.begin(), only_files.end(), entry.path().filename().string()) == only_files.end())
      continue;
    if (X509_STORE_load_file(store.get(), entry.path().c_str()) != 1) return "cannot load " + entry.path().string();
  }
  if (partial_chain) X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  kl::ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

kl::Bytes spki_of_cert(kl::ByteView der) {
  auto cert = cert_from_der(der);
  REQUIRE(cert);
  return kl::tpm::spki_der(X509_get0_pubkey(cert.get()));
}

struct Case {
  const char* name;
  TpmAgent::EkAlg alg;
  bool ecc;
};

}  // namespace

TEST_CASE("TpmAgent on swtpm: EK matches its certificate, which chains to the local CA", "[agent][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm/swtpm_setup not installed: TPM tests skipped");
    return;
  }
  for (const Case c : {Case{"rsa2048", TpmAgent::EkAlg::rsa2048, false}, Case{"ecc_p256", TpmAgent::EkAlg::ecc_p256, true}}) {
    INFO("EK " << c.name);
    Swtpm tpm(Swtpm::Options{c.ecc, true});
    TpmAgent agent(tpm.tcti(), c.alg);

    const auto ek = kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public());
    const auto ak = kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public());
    CHECK(ek.tpmt.type == (c.ecc ? TPM2_ALG_ECC : TPM2_ALG_RSA));
    CHECK(ek.tpmt.objectAttributes == 0x000300B2u);   // TCG default EK: restricted decrypt, adminWithPolicy
    CHECK(ek.tpmt.nameAlg == TPM2_ALG_SHA256);
    CHECK(ak.tpmt.type == ek.tpmt.type);
    CHECK(ak.tpmt.objectAttributes == 0x00050072u);   // the attributes old registrars insist on
    CHECK(ak.tpmt.nameAlg == TPM2_ALG_SHA256);
    if (c.ecc) {
      CHECK(ek.tpmt.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256);
      CHECK(ak.tpmt.parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA);
      CHECK(ak.tpmt.parameters.eccDetail.scheme.details.ecdsa.hashAlg == TPM2_ALG_SHA256);
    } else {
      CHECK(ek.tpmt.parameters.rsaDetail.keyBits == 2048);
      CHECK(ak.tpmt.parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSASSA);
      CHECK(ak.tpmt.parameters.rsaDetail.scheme.details.rsassa.hashAlg == TPM2_ALG_SHA256);
    }

    const auto cert = agent.ek_certificate_der();
    REQUIRE(cert.has_value());
    auto ek_key = kl::tpm::public_key(ek);
    CHECK(kl::tpm::spki_der(ek_key.get()) == spki_of_cert(*cert));

    // The tenant's tpm_cert_store: issuer alone (partial chain) and issuer + root (full chain) both verify.
    CHECK(verify_chain(*cert, tpm.ca_store_dir(), true, {"swtpm-localca-issuer.pem"}) == "");
    CHECK(verify_chain(*cert, tpm.ca_store_dir(), false) == "");
    // Without the issuer, the root alone does not vouch for the EK certificate.
    CHECK(verify_chain(*cert, tpm.ca_store_dir(), false, {"swtpm-localca-root.pem"}) != "");
  }
}

TEST_CASE("EK certificate verifies with `openssl verify -partial_chain` and the issuer cert", "[agent][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  Swtpm tpm;
  TpmAgent agent(tpm.tcti());
  const auto cert = agent.ek_certificate_der();
  REQUIRE(cert);
  TempDir dir;
  const auto pem = dir.path() / "ek.pem";
  std::ofstream(pem) << der_to_pem(*cert);
  const auto r = run_command({"openssl", "verify", "-partial_chain", "-CAfile",
                              (tpm.ca_store_dir() / "swtpm-localca-issuer.pem").string(), pem.string()});
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find(": OK") != std::string::npos);
}

TEST_CASE("make_credential -> TpmAgent::activate_credential returns the credential", "[agent][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  for (const Case c : {Case{"rsa2048", TpmAgent::EkAlg::rsa2048, false}, Case{"ecc_p256", TpmAgent::EkAlg::ecc_p256, true}}) {
    INFO("EK " << c.name);
    Swtpm tpm(Swtpm::Options{c.ecc, true});
    TpmAgent agent(tpm.tcti(), c.alg);
    const auto ek = kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public());
    const auto ak_name = kl::tpm::name_of(kl::tpm::parse_tpm2b_public(agent.ak_tpm2b_public()));

    const std::string challenge = kl::tpm::random_challenge();
    const auto blob = kl::tpm::make_credential(ek, ak_name, kl::as_bytes(challenge));
    CHECK(kl::as_string(agent.activate_credential(blob)) == challenge);

    // A second activation in the same session works (sessions are flushed, handles kept).
    const std::string second = kl::tpm::random_challenge();
    CHECK(kl::as_string(agent.activate_credential(kl::tpm::make_credential(ek, ak_name, kl::as_bytes(second)))) ==
          second);

    // Bound to another object's name: the TPM's integrity check refuses it.
    auto other_name = ak_name;
    other_name.back() ^= 0x01;
    CHECK_THROWS_WITH(agent.activate_credential(kl::tpm::make_credential(ek, other_name, kl::as_bytes(challenge))),
                      Catch::Contains("Esys_ActivateCredential"));

    // A flipped bit in the encrypted credential: the outer HMAC fails.
    auto tampered = blob;
    tampered[12] ^= 0x80;
    CHECK_THROWS(agent.activate_credential(tampered));
    // Garbage is a parse error before the TPM is asked.
    CHECK_THROWS_AS(agent.activate_credential(kl::as_bytes(std::string("not a blob"))), kl::ParseError);
  }
}

TEST_CASE("TpmAgent::quote returns a TPMS_ATTEST, a signature and the quoted PCR values", "[agent][tpm][quote]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  Swtpm tpm;
  TpmAgent agent(tpm.tcti());
  const kl::Bytes extend = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(std::string("measured")));
  agent.pcr_extend(16, kl::crypto::HashAlg::sha256, extend);
  const std::string nonce_text = "0123456789abcdef0123";
  const kl::Bytes nonce(nonce_text.begin(), nonce_text.end());
  const auto q = agent.quote(nonce, kl::crypto::HashAlg::sha256, {0, 10, 16});

  REQUIRE(q.attest.size() > 10);
  CHECK(kl::hex_encode(kl::ByteView(q.attest).first(4)) == "ff544347");   // TPM_GENERATED_VALUE
  CHECK(kl::hex_encode(kl::ByteView(q.attest).subspan(4, 2)) == "8018");  // TPM_ST_ATTEST_QUOTE
  CHECK(kl::hex_encode(q.attest).find(kl::hex_encode(nonce)) != std::string::npos);
  REQUIRE(q.signature.size() > 4);
  CHECK(kl::hex_encode(kl::ByteView(q.signature).first(2)) == "0014");    // TPM_ALG_RSASSA
  REQUIRE(q.pcr_values.size() == 3);
  CHECK(q.pcr_values[0].first == 0);
  CHECK(q.pcr_values[1].first == 10);
  CHECK(q.pcr_values[2].first == 16);
  // PCR 16 started at zero in a fresh swtpm: one extend gives H(0^32 || d).
  kl::Bytes concat(32, 0);
  concat.insert(concat.end(), extend.begin(), extend.end());
  CHECK(q.pcr_values[2].second == kl::crypto::digest(kl::crypto::HashAlg::sha256, concat));

  CHECK_THROWS_AS(agent.quote(kl::Bytes(65, 0), kl::crypto::HashAlg::sha256, {0}), std::invalid_argument);
}
