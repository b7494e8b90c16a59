// decode_certificate_field: the three encodings agents send, the stored DER, strictness, and rejection of
// malformed input; certificate_has_key against a real swtpm EK.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cert_factory.hpp"
#include "common/attest/ek/certificate_field.hpp"
#include "common/attest/ek/der_strictness.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/public_area.hpp"

using namespace kl;
using namespace kl::ektest;

namespace {

struct SwtpmAgent {
  std::string ekcert_b64;
  Bytes ek_tpm;
  Bytes aik_tpm;
};

SwtpmAgent swtpm_agent() {
  auto j = nlohmann::json::parse(read_text_file(KL_TESTDATA_DIR "/keylime-db/registrar-get-agent-v2.1.json"));
  const auto& r = j.at("results");
  SwtpmAgent a;
  a.ekcert_b64 = r.at("ekcert").get<std::string>();
  a.ek_tpm = base64_decode(r.at("ek_tpm").get<std::string>()).value();
  a.aik_tpm = base64_decode(r.at("aik_tpm").get<std::string>()).value();
  return a;
}

std::string pem_wrap(const Bytes& der, const char* eol = "\n") {
  std::string b64 = base64_encode(der);
  std::string out = std::string("-----BEGIN CERTIFICATE-----") + eol;
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + eol;
  return out + "-----END CERTIFICATE-----" + eol;
}

}  // namespace

TEST_CASE("swtpm EK certificate from a real Keylime registrar decodes and matches its ek_tpm", "[ek][cert]") {
  auto agent = swtpm_agent();
  Bytes der = base64_decode(agent.ekcert_b64).value();

  auto f = ek::decode_certificate_field(agent.ekcert_b64);
  REQUIRE(f.leaf);
  CHECK(f.chain.empty());
  CHECK(f.leaf_der == der);  // stored exactly as received
  CHECK(ek::issuer_text(f.leaf.get()) == "CN=swtpm-localca");
  CHECK(ek::subject_text(f.leaf.get()) == "CN=unknown");
  // The stored sample is canonical DER: python-cryptography 48 loads it without the pyasn1 fallback and
  // every SET in it has a single element. (Nuvoton-style non-DER is covered below.)
  CHECK(f.strict_der);

  auto ek_key = tpm::public_key(tpm::parse_tpm2b_public(agent.ek_tpm));
  auto ak_key = tpm::public_key(tpm::parse_tpm2b_public(agent.aik_tpm));
  CHECK(ek::certificate_has_key(f.leaf.get(), ek_key.get()));
  CHECK_FALSE(ek::certificate_has_key(f.leaf.get(), ak_key.get()));
  CHECK_FALSE(ek::certificate_has_key(f.leaf.get(), nullptr));
  CHECK_FALSE(ek::certificate_has_key(nullptr, ek_key.get()));
}

TEST_CASE("PEM, base64 DER and raw DER decode to the same leaf_der", "[ek][cert]") {
  auto chain = make_chain(KeyKind::p256, "enc");
  Bytes der = der_of(chain.leaf.get());

  auto from_pem = ek::decode_certificate_field(pem_wrap(der));
  auto from_crlf_pem = ek::decode_certificate_field(pem_wrap(der, "\r\n"));
  auto from_b64 = ek::decode_certificate_field(base64_encode(der));
  auto from_der = ek::decode_certificate_field(as_string(der));
  for (const auto* f : {&from_pem, &from_crlf_pem, &from_b64, &from_der}) {
    CHECK(f->leaf_der == der);
    CHECK(f->strict_der);
    CHECK(f->chain.empty());
    CHECK(X509_cmp(f->leaf.get(), chain.leaf.get()) == 0);
  }
  CHECK(ek::to_der(from_pem.leaf.get()) == der);
  CHECK(ek::to_pem(from_der.leaf.get()) == pem_of(chain.leaf.get()));
  CHECK(ek::issuer_text(from_pem.leaf.get()) == "CN=Test enc EK Intermediate CA");
  CHECK(ek::subject_text(from_pem.leaf.get()).empty());  // TCG EK profile: empty subject
}

TEST_CASE("PEM chain: first block is the leaf, later blocks the chain", "[ek][cert]") {
  auto chain = make_chain(KeyKind::rsa2048, "pemchain");
  std::string text = pem_of(chain.leaf.get()) + "\n" + pem_of(chain.inter.get()) + pem_of(chain.root.get());
  auto f = ek::decode_certificate_field(text);
  CHECK(f.leaf_der == der_of(chain.leaf.get()));
  REQUIRE(f.chain.size() == 2);
  CHECK(X509_cmp(f.chain[0].get(), chain.inter.get()) == 0);
  CHECK(X509_cmp(f.chain[1].get(), chain.root.get()) == 0);
}

TEST_CASE("malformed certificate fields throw ParseError", "[ek][cert]") {
  auto chain = make_chain(KeyKind::p256, "bad");
  Bytes der = der_of(chain.leaf.get());
  std::string pem = pem_of(chain.leaf.get());

  auto rejects = [](std::string_view text, const std::string& why) {
    INFO(why);
    CHECK_THROWS_AS(ek::decode_certificate_field(text), ParseError);
  };
  rejects("", "empty");
  rejects("   \n", "whitespace only");
  rejects("hello world", "garbage text");
  rejects("disabled", "the mtls_cert sentinel is not a certificate");
  rejects(base64_encode(as_bytes("not a certificate at all")), "base64 of garbage");

  Bytes truncated(der.begin(), der.end() - 10);
  rejects(as_string(truncated), "truncated raw DER");
  rejects(base64_encode(truncated), "truncated base64 DER");
  rejects(as_string(Bytes(der.begin(), der.begin() + 4)), "only the DER header");

  Bytes junk = der;
  junk.push_back(0x00);
  junk.push_back(0x42);
  rejects(as_string(junk), "raw DER with trailing junk");
  rejects(base64_encode(junk), "base64 DER with trailing junk");
  rejects(pem + "trailing junk\n", "PEM with trailing text");
  rejects("junk before\n" + pem, "PEM with leading text");
  rejects(pem.substr(0, pem.size() - 10), "PEM without END line");
  rejects("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "PEM body not base64");
  rejects("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "empty PEM body");
  rejects(pem_wrap(truncated), "PEM of truncated DER");
  rejects(pem + pem_wrap(truncated), "malformed chain block");

  // A length field claiming far more than present must not be trusted.
  Bytes liar = der;
  liar[2] = 0xff;
  liar[3] = 0xff;
  rejects(as_string(liar), "outer length larger than the input");

  std::string huge = pem;
  while (huge.size() <= 64 * 1024) huge += pem;
  rejects(huge, "over 64 KiB");
}

TEST_CASE("decoding never crashes on mutated input", "[ek][cert]") {
  auto chain = make_chain(KeyKind::rsa2048, "fuzz");
  Bytes der = der_of(chain.leaf.get());
  std::size_t decoded = 0, rejected = 0;
  for (std::size_t i = 0; i < der.size(); i += 7) {
    Bytes m = der;
    m[i] ^= 0x5a;
    try {
      auto f = ek::decode_certificate_field(as_string(m));
      CHECK(!f.leaf_der.empty());
      ++decoded;
    } catch (const ParseError&) {
      ++rejected;
    }
    Bytes cut(der.begin(), der.begin() + static_cast<long>(i));
    CHECK_THROWS_AS(ek::decode_certificate_field(as_string(cut)), ParseError);
  }
  CHECK(decoded + rejected == (der.size() + 6) / 7);
  CHECK(rejected > 0);
}

TEST_CASE("Nuvoton-style unsorted multi-valued RDN: decoded, flagged non-strict, stored signature-valid",
          "[ek][cert][der]") {
  // Nuvoton's EK CAs put C, O and CN into one RDN in that order, which is not DER order. OpenSSL always
  // sorts when it encodes, so build the TBS with OpenSSL and then swap the RDN's elements by hand.
  auto ca_key = make_key(KeyKind::rsa2048);
  auto ca_name = make_name({{"C", "TW", V_ASN1_PRINTABLESTRING},
                            {"O", "Nuvoton Technology Corporation", V_ASN1_PRINTABLESTRING},
                            {"CN", "Nuvoton TPM Root CA 2111", V_ASN1_PRINTABLESTRING}},
                           /*multi_valued=*/true);
  auto ca = make_cert({.subject = ca_name.get(), .subject_key = ca_key.get(), .ca = true});
  auto leaf_key = make_key(KeyKind::rsa2048);
  auto empty = make_name({});
  auto leaf = make_cert({.subject = empty.get(), .issuer = ca_name.get(), .subject_key = leaf_key.get(),
                         .issuer_key = ca_key.get(), .serial = 7, .ek_extensions = true, .not_after_9999 = true});

  Bytes tbs = tbs_of(leaf.get());
  unsigned char* nd = nullptr;
  int nlen = i2d_X509_NAME(ca_name.get(), &nd);
  Bytes name_der(nd, nd + nlen);
  OPENSSL_free(nd);
  auto at = std::search(tbs.begin(), tbs.end(), name_der.begin(), name_der.end());
  REQUIRE(at != tbs.end());
  // name_der = 30 L 31 L <e1><e2><e3>, all short-form lengths; rotate the three AttributeTypeAndValues.
  REQUIRE(name_der[0] == 0x30);
  REQUIRE(name_der[2] == 0x31);
  std::vector<Bytes> elems;
  for (std::size_t p = 4; p < name_der.size();) {
    std::size_t len = name_der[p + 1];
    elems.emplace_back(name_der.begin() + static_cast<long>(p), name_der.begin() + static_cast<long>(p + 2 + len));
    p += 2 + len;
  }
  REQUIRE(elems.size() == 3);
  Bytes unsorted(name_der.begin(), name_der.begin() + 4);
  for (int i : {2, 0, 1}) unsorted.insert(unsorted.end(), elems[i].begin(), elems[i].end());
  REQUIRE(unsorted.size() == name_der.size());
  REQUIRE(unsorted != name_der);
  std::copy(unsorted.begin(), unsorted.end(), at);
  Bytes odd = resign_tbs(tbs, leaf.get(), ca_key.get());

  CHECK_FALSE(ek::is_strict_der_certificate(odd));
  CHECK(ek::is_strict_der_certificate(der_of(leaf.get())));

  auto f = ek::decode_certificate_field(base64_encode(odd));
  CHECK_FALSE(f.strict_der);
  // The signed bytes are kept: the stored DER still verifies against the CA key.
  CHECK(f.leaf_der == odd);
  CHECK(X509_verify(f.leaf.get(), ca_key.get()) == 1);
  auto again = ek::decode_certificate_field(as_string(f.leaf_der));
  CHECK(X509_verify(again.leaf.get(), ca_key.get()) == 1);
  // Multi-valued RDNs print with '+'.
  CHECK(ek::issuer_text(f.leaf.get()).find('+') != std::string::npos);
}

TEST_CASE("DER strictness checker rejects BER-isms", "[ek][der]") {
  auto chain = make_chain(KeyKind::p256, "ber");
  Bytes der = der_of(chain.leaf.get());
  REQUIRE(ek::is_strict_der_certificate(der));

  // Long-form length where short form fits: re-wrap the whole certificate with 0x82 00 LL... not minimal.
  {
    Bytes inner(der.begin() + 4, der.end());  // der starts 30 82 HH LL
    Bytes ber{0x30, 0x83, 0x00, der[2], der[3]};
    ber.insert(ber.end(), inner.begin(), inner.end());
    CHECK_FALSE(ek::is_strict_der_certificate(ber));
  }
  // Indefinite length.
  {
    Bytes inner(der.begin() + 4, der.end());
    Bytes ber{0x30, 0x80};
    ber.insert(ber.end(), inner.begin(), inner.end());
    ber.push_back(0);
    ber.push_back(0);
    CHECK_FALSE(ek::is_strict_der_certificate(ber));
  }
  CHECK_FALSE(ek::is_strict_der_certificate({}));
  CHECK_FALSE(ek::is_strict_der_certificate(Bytes{0x30}));
  Bytes extra = der;
  extra.push_back(0);
  CHECK_FALSE(ek::is_strict_der_certificate(extra));
}
