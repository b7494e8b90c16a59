// verify_chain: generated vendor-like chains for every EK key type, the quirks that must be tolerated, the
// failures that must not be, and real CA material (Azure vTPM CA, AMD ARK/ASK/VCEK).
#include <catch2/catch.hpp>
#include <openssl/x509v3.h>

#include "cert_factory.hpp"
#include "common/attest/ek/certificate_field.hpp"
#include "common/attest/ek/trust_store.hpp"

using namespace kl;
using namespace kl::ektest;

namespace {

ek::TrustStore store_of(std::initializer_list<X509*> certs) {
  std::vector<ossl::X509Ptr> v;
  for (X509* c : certs) v.push_back(dup(c));
  return ek::TrustStore::from_certificates(std::move(v));
}

std::vector<ossl::X509Ptr> list_of(std::initializer_list<X509*> certs) {
  std::vector<ossl::X509Ptr> v;
  for (X509* c : certs) v.push_back(dup(c));
  return v;
}

ossl::X509Ptr load_pem_file(const std::string& path) {
  auto f = ek::decode_certificate_field(read_text_file(path));
  return std::move(f.leaf);
}

}  // namespace

TEST_CASE("root in store, intermediate sent after the leaf: trusted for every EK key type", "[ek][chain]") {
  auto kind = GENERATE(KeyKind::rsa2048, KeyKind::rsa3072, KeyKind::p256, KeyKind::p384);
  auto chain = make_chain(kind, "k" + std::to_string(static_cast<int>(kind)));
  auto store = store_of({chain.root.get()});

  // As the Rust agent sends it: PEM leaf followed by the chain from NV.
  auto field = ek::decode_certificate_field(pem_of(chain.leaf.get()) + pem_of(chain.inter.get()));
  auto v = ek::verify_chain(store, field.leaf.get(), field.chain);
  CHECK(v.trusted);
  CHECK(v.error.empty());
  CHECK(v.missing_issuer.empty());

  SECTION("intermediate missing: rejected, naming the intermediate") {
    auto m = ek::verify_chain(store, chain.leaf.get(), {});
    CHECK_FALSE(m.trusted);
    CHECK(m.missing_issuer == ek::subject_text(chain.inter.get()));
    CHECK(m.error.find(m.missing_issuer) != std::string::npos);
    CHECK(m.error.find("not found in the trust store") != std::string::npos);
  }
  SECTION("intermediate in the store instead: trusted without the root (store certificates are anchors)") {
    auto only_inter = store_of({chain.inter.get()});
    CHECK(ek::verify_chain(only_inter, chain.leaf.get(), {}).trusted);
  }
}

TEST_CASE("leaf issuer DN as PrintableString, CA subject as UTF8String: names match canonically",
          "[ek][chain][quirk]") {
  auto ca_key = make_key(KeyKind::rsa2048);
  auto ca_name = make_name({{"C", "DE", V_ASN1_PRINTABLESTRING},
                            {"O", "Example TPM Vendor AG", V_ASN1_UTF8STRING},
                            {"CN", "Example TPM EK CA 42", V_ASN1_UTF8STRING}});
  auto issuer_as_printable = make_name({{"C", "DE", V_ASN1_PRINTABLESTRING},
                                        {"O", "Example TPM Vendor AG", V_ASN1_PRINTABLESTRING},
                                        {"CN", "Example  TPM EK CA 42", V_ASN1_PRINTABLESTRING}});
  auto ca = make_cert({.subject = ca_name.get(), .subject_key = ca_key.get(), .ca = true});
  auto leaf_key = make_key(KeyKind::rsa2048);
  auto empty = make_name({});
  auto leaf = make_cert({.subject = empty.get(), .issuer = issuer_as_printable.get(), .subject_key = leaf_key.get(),
                         .issuer_key = ca_key.get(), .ek_extensions = true, .not_after_9999 = true});
  // The two encodings really differ.
  REQUIRE(X509_NAME_get_entry(X509_get_issuer_name(leaf.get()), 2) != nullptr);
  REQUIRE(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_issuer_name(leaf.get()), 2))) ==
          V_ASN1_PRINTABLESTRING);
  REQUIRE(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(ca.get()), 2))) ==
          V_ASN1_UTF8STRING);

  auto store = store_of({ca.get()});
  auto v = ek::verify_chain(store, leaf.get(), {});
  CHECK(v.trusted);
  CHECK(v.error.empty());
}

TEST_CASE("unknown critical extensions (TPM-specific) on the leaf are tolerated", "[ek][chain][quirk]") {
  auto kind = GENERATE(KeyKind::rsa2048, KeyKind::p384);
  auto root_key = make_key(kind);
  auto root_name = cn("Critical Ext Root");
  auto root = make_cert({.subject = root_name.get(), .subject_key = root_key.get(), .ca = true});
  auto leaf_key = make_key(kind);
  auto empty = make_name({});
  auto leaf = make_cert({.subject = empty.get(), .issuer = root_name.get(), .subject_key = leaf_key.get(),
                         .issuer_key = root_key.get(), .ek_extensions = true, .unknown_critical_extension = true});
  REQUIRE(X509_get_extension_flags(leaf.get()) & EXFLAG_CRITICAL);  // OpenSSL sees an unhandled critical ext
  auto v = ek::verify_chain(store_of({root.get()}), leaf.get(), {});
  CHECK(v.trusted);
  CHECK(v.error.empty());
}

TEST_CASE("untrusted root: rejected", "[ek][chain]") {
  auto ours = make_chain(KeyKind::rsa2048, "ours");
  auto theirs = make_chain(KeyKind::rsa2048, "theirs");
  auto store = store_of({ours.root.get()});

  SECTION("full foreign chain including its self-signed root sent by the agent") {
    auto v = ek::verify_chain(store, theirs.leaf.get(), list_of({theirs.inter.get(), theirs.root.get()}));
    CHECK_FALSE(v.trusted);
    CHECK(v.missing_issuer == "CN=Test theirs EK Root CA");
    CHECK(v.error.find("CN=Test theirs EK Root CA") != std::string::npos);
  }
  SECTION("foreign root with the same name as ours: signature does not verify") {
    auto imposter_key = make_key(KeyKind::rsa2048);
    auto our_root_name = cn("Test ours EK Root CA");
    auto inter_name = cn("Test ours EK Intermediate CA");
    auto fake_inter = make_cert({.subject = inter_name.get(), .issuer = our_root_name.get(),
                                 .subject_key = ours.inter_key.get(), .issuer_key = imposter_key.get(), .ca = true});
    auto v = ek::verify_chain(store, ours.leaf.get(), list_of({fake_inter.get()}));
    CHECK_FALSE(v.trusted);
    CHECK_FALSE(v.error.empty());
  }
  SECTION("leaf signed by a different key than the named issuer's") {
    auto empty = make_name({});
    auto inter_name = cn("Test ours EK Intermediate CA");
    auto forged = make_cert({.subject = empty.get(), .issuer = inter_name.get(), .subject_key = theirs.leaf_key.get(),
                             .issuer_key = theirs.inter_key.get(), .ek_extensions = true});
    auto v = ek::verify_chain(store, forged.get(), list_of({ours.inter.get()}));
    CHECK_FALSE(v.trusted);
    CHECK(v.error.find("signature") != std::string::npos);
  }
  SECTION("empty store") {
    ek::TrustStore none;
    auto v = ek::verify_chain(none, ours.leaf.get(), list_of({ours.inter.get()}));
    CHECK_FALSE(v.trusted);
    CHECK(v.missing_issuer == "CN=Test ours EK Intermediate CA");
  }
  SECTION("null leaf") {
    CHECK_FALSE(ek::verify_chain(store, nullptr, {}).trusted);
  }
}

TEST_CASE("intermediate CA flags: missing basicConstraints tolerated, explicit CA:FALSE is not", "[ek][chain][quirk]") {
  auto root_key = make_key(KeyKind::rsa2048);
  auto inter_key = make_key(KeyKind::rsa2048);
  auto leaf_key = make_key(KeyKind::rsa2048);
  auto root_name = cn("Flags Root");
  auto inter_name = cn("Flags Intermediate");
  auto empty = make_name({});
  auto root = make_cert({.subject = root_name.get(), .subject_key = root_key.get(), .ca = true});
  auto leaf = make_cert({.subject = empty.get(), .issuer = inter_name.get(), .subject_key = leaf_key.get(),
                         .issuer_key = inter_key.get(), .ek_extensions = true});
  auto store = store_of({root.get()});

  SECTION("no basicConstraints, no keyUsage") {
    auto inter = make_cert({.subject = inter_name.get(), .issuer = root_name.get(), .subject_key = inter_key.get(),
                            .issuer_key = root_key.get(), .ca = true, .basic_constraints = false, .key_usage = false});
    CHECK(ek::verify_chain(store, leaf.get(), list_of({inter.get()})).trusted);
  }
  SECTION("no basicConstraints, keyUsage keyCertSign") {
    auto inter = make_cert({.subject = inter_name.get(), .issuer = root_name.get(), .subject_key = inter_key.get(),
                            .issuer_key = root_key.get(), .ca = true, .basic_constraints = false});
    CHECK(ek::verify_chain(store, leaf.get(), list_of({inter.get()})).trusted);
  }
  SECTION("no basicConstraints, keyUsage without keyCertSign") {
    auto inter = make_cert({.subject = inter_name.get(), .issuer = root_name.get(), .subject_key = inter_key.get(),
                            .issuer_key = root_key.get(), .ca = false, .basic_constraints = false});
    CHECK_FALSE(ek::verify_chain(store, leaf.get(), list_of({inter.get()})).trusted);
  }
  SECTION("explicit CA:FALSE: an end-entity certificate cannot issue") {
    auto inter = make_cert({.subject = inter_name.get(), .issuer = root_name.get(), .subject_key = inter_key.get(),
                            .issuer_key = root_key.get(), .ca = false, .key_usage = false});
    auto v = ek::verify_chain(store, leaf.get(), list_of({inter.get()}));
    CHECK_FALSE(v.trusted);
    CHECK(v.error.find("CN=Flags Intermediate") != std::string::npos);
  }
}

TEST_CASE("AKID naming another certificate of the same CA key (Infineon cross-signed root) is tolerated",
          "[ek][chain][quirk]") {
  // IFX: "IFX TPM EK Root CA" exists self-signed (serial 03) and cross-signed by the VeriSign TPM root.
  // Intermediates' AKID names the self-signed one by issuer+serial; the store holds the cross-signed one.
  auto vendor_root_key = make_key(KeyKind::rsa2048);
  auto verisign_key = make_key(KeyKind::rsa2048);
  auto inter_key = make_key(KeyKind::rsa2048);
  auto leaf_key = make_key(KeyKind::rsa2048);
  auto vendor_root_name = cn("IFX-like TPM EK Root CA");
  auto verisign_name = cn("VeriSign-like TPM Root CA");
  auto inter_name = cn("IFX-like TPM EK Intermediate CA 01");
  auto empty = make_name({});
  auto self_signed = make_cert({.subject = vendor_root_name.get(), .subject_key = vendor_root_key.get(),
                                .serial = 3, .ca = true});
  auto cross_signed = make_cert({.subject = vendor_root_name.get(), .issuer = verisign_name.get(),
                                 .subject_key = vendor_root_key.get(), .issuer_key = verisign_key.get(),
                                 .serial = 0x4724, .ca = true});
  auto inter = make_cert({.subject = inter_name.get(), .issuer = vendor_root_name.get(), .subject_key = inter_key.get(),
                          .issuer_key = vendor_root_key.get(), .serial = 11, .ca = true,
                          .akid_from = self_signed.get()});
  auto leaf = make_cert({.subject = empty.get(), .issuer = inter_name.get(), .subject_key = leaf_key.get(),
                         .issuer_key = inter_key.get(), .ek_extensions = true, .akid_from = inter.get()});
  REQUIRE(X509_check_issued(cross_signed.get(), inter.get()) == X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH);

  auto store = store_of({cross_signed.get()});
  CHECK(ek::verify_chain(store, inter.get(), {}).trusted);
  CHECK(ek::verify_chain(store, leaf.get(), list_of({inter.get()})).trusted);

  SECTION("but not when the key differs") {
    auto other_key = make_key(KeyKind::rsa2048);
    auto impostor = make_cert({.subject = vendor_root_name.get(), .issuer = verisign_name.get(),
                               .subject_key = other_key.get(), .issuer_key = verisign_key.get(), .serial = 0x4725,
                               .ca = true});
    auto v = ek::verify_chain(store_of({impostor.get()}), inter.get(), {});
    CHECK_FALSE(v.trusted);
    CHECK(v.missing_issuer == "CN=IFX-like TPM EK Root CA");
  }
}

TEST_CASE("validity is checked only when asked", "[ek][chain]") {
  auto root_key = make_key(KeyKind::p256);
  auto leaf_key = make_key(KeyKind::p256);
  auto root_name = cn("Time Root");
  auto empty = make_name({});
  auto root = make_cert({.subject = root_name.get(), .subject_key = root_key.get(), .ca = true});
  auto expired = make_cert({.subject = empty.get(), .issuer = root_name.get(), .subject_key = leaf_key.get(),
                            .issuer_key = root_key.get(), .ek_extensions = true, .not_before_days = -20,
                            .not_after_days = -10});
  auto forever = make_cert({.subject = empty.get(), .issuer = root_name.get(), .subject_key = leaf_key.get(),
                            .issuer_key = root_key.get(), .ek_extensions = true, .not_after_9999 = true});
  auto store = store_of({root.get()});
  CHECK(ek::verify_chain(store, expired.get(), {}, false).trusted);
  auto v = ek::verify_chain(store, expired.get(), {}, true);
  CHECK_FALSE(v.trusted);
  CHECK(v.error.find("expired") != std::string::npos);
  CHECK(v.missing_issuer.empty());
  CHECK(ek::verify_chain(store, forever.get(), {}, true).trusted);
}

TEST_CASE("real CA material: Azure vTPM CA chain", "[ek][chain][real]") {
  const std::string dir = KL_TESTDATA_DIR "/snp/azure-vtpm-ca/";
  auto root = load_pem_file(dir + "azure-virtual-tpm-root-ca-2023.pem");
  auto ca01 = load_pem_file(dir + "global-virtual-tpm-ca-01.pem");
  auto store = store_of({root.get()});

  auto v = ek::verify_chain(store, ca01.get(), {});
  CHECK(v.trusted);
  // CA-01 expired on 2025-11-03.
  auto timed = ek::verify_chain(store, ca01.get(), {}, true);
  CHECK_FALSE(timed.trusted);
  CHECK(timed.error.find("expired") != std::string::npos);

  auto wrong = store_of({ca01.get()});
  auto m = ek::verify_chain(wrong, root.get(), {});
  CHECK_FALSE(m.trusted);
  CHECK(m.missing_issuer ==
        "CN=Azure Virtual TPM Root Certificate Authority 2023,O=Microsoft Corporation,C=US");
}

TEST_CASE("real CA material: AMD Milan VCEK -> ASK (sent) -> ARK (store), RSA-PSS and P-384", "[ek][chain][real]") {
  const std::string snp = KL_TESTDATA_DIR "/snp/";
  auto ark = load_pem_file(snp + "amd-roots/milan_vcek_ark.pem");
  auto ask = load_pem_file(snp + "amd-roots/milan_vcek_ask.pem");
  auto vcek = ek::decode_certificate_field(as_string(read_binary_file(snp + "milan-virtee/vcek_milan.der")));
  CHECK(ek::issuer_text(vcek.leaf.get()).find("CN=SEV-Milan") == 0);

  auto store = store_of({ark.get()});
  CHECK(ek::verify_chain(store, vcek.leaf.get(), list_of({ask.get()})).trusted);
  CHECK(ek::verify_chain(store, ask.get(), {}).trusted);

  auto missing = ek::verify_chain(store, vcek.leaf.get(), {});
  CHECK_FALSE(missing.trusted);
  CHECK(missing.missing_issuer == ek::subject_text(ask.get()));

  // A Genoa ARK does not anchor a Milan chain.
  auto genoa = store_of({load_pem_file(snp + "amd-roots/genoa_vcek_ark.pem").get()});
  CHECK_FALSE(ek::verify_chain(genoa, vcek.leaf.get(), list_of({ask.get()})).trusted);
}
