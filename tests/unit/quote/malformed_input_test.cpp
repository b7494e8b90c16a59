// Malformed evidence: every parser must reject truncated, oversized and garbage input with kl::ParseError,
// and verify_quote must turn it into an error text, never a crash or a pass.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/attest/parse_error.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/attest.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/attest/tpm/signature.hpp"

using kl::Bytes;

namespace {

Bytes file(const std::string& name) {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/keylime/tpm/tpm2-tools-files/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

struct Real {
  kl::quote::QuoteParts parts{file("quote.out"), file("quotesig.out"), file("quotepcr.out")};
  kl::ossl::Pkey ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(file("ak.pub")));
  std::string nonce = kl::base64_encode(kl::tpm::parse_attest(parts.attest).extra_data);
  kl::quote::QuoteCheck verify() const { return kl::quote::verify_quote(parts, nonce, "sha256", ak.get()); }
};

}  // namespace

TEST_CASE("parse_attest: every truncation of a real TPMS_ATTEST is rejected") {
  const Bytes attest = file("quote.out");
  REQUIRE(attest.size() == 133);
  for (std::size_t n = 0; n < attest.size(); ++n) {
    INFO(n);
    CHECK_THROWS_AS(kl::tpm::parse_attest(kl::ByteView(attest).first(n)), kl::ParseError);
  }
  Bytes longer = attest;
  longer.push_back(0);
  CHECK_THROWS_WITH(kl::tpm::parse_attest(longer), "TPMS_ATTEST: 1 trailing bytes");
}

TEST_CASE("parse_attest: lying length fields and unknown types") {
  Bytes attest = file("quote.out");
  SECTION("qualifiedSigner size larger than any name") {
    attest[6] = 0xFF;
    attest[7] = 0xFF;
    CHECK_THROWS_WITH(kl::tpm::parse_attest(attest), "TPMS_ATTEST: qualifiedSigner size 65535 exceeds 68");
  }
  SECTION("unknown attestation type") {
    attest[5] = 0x14;  // TPM_ST_ATTEST_NV
    CHECK_THROWS_AS(kl::tpm::parse_attest(attest), kl::ParseError);
  }
  SECTION("wrong magic still parses, and verify_quote reports it") {
    attest[0] = 0x00;
    auto a = kl::tpm::parse_attest(attest);
    CHECK(a.magic == 0x00544347u);
  }
  SECTION("PCR selection count beyond 16 banks") {
    // magic(4) type(2) signer(2+34) extra(2+20) clock(17) fw(8) -> pcrSelect.count at 89
    attest[89] = 0x7F;
    CHECK_THROWS_WITH(kl::tpm::parse_attest(attest), "TPMS_ATTEST: too many PCR selections");
  }
  SECTION("garbage") {
    CHECK_THROWS_AS(kl::tpm::parse_attest(Bytes(500, 0xAB)), kl::ParseError);
    CHECK_THROWS_AS(kl::tpm::parse_attest(Bytes{}), kl::ParseError);
  }
}

TEST_CASE("parse_signature: real RSASSA signature, truncation, oversize, unknown scheme") {
  const Bytes sig = file("quotesig.out");
  auto s = kl::tpm::parse_signature(sig);
  CHECK(s.sig_alg == kl::tpm::kAlgRsassa);
  CHECK(s.hash_alg == 0x000B);
  CHECK(s.rsa.size() == 256);
  for (std::size_t n : {0, 1, 3, 4, 5, 6, 100, 261}) {
    INFO(n);
    CHECK_THROWS_AS(kl::tpm::parse_signature(kl::ByteView(sig).first(n)), kl::ParseError);
  }
  Bytes longer = sig;
  longer.push_back(0);
  CHECK_THROWS_WITH(kl::tpm::parse_signature(longer), "TPMT_SIGNATURE: trailing bytes");
  Bytes huge = {0x00, 0x14, 0x00, 0x0B, 0x02, 0x01};
  huge.resize(6 + 513, 0x55);
  CHECK_THROWS_WITH(kl::tpm::parse_signature(huge), "TPMT_SIGNATURE: signature too large");
  CHECK_THROWS_AS(kl::tpm::parse_signature(Bytes{0x00, 0x10, 0x00, 0x0B}), kl::ParseError);  // TPM_ALG_NULL
  CHECK_THROWS_AS(kl::tpm::parse_signature(Bytes{0x00, 0x18, 0x00, 0x0B, 0x00, 0x00}), kl::ParseError);
}

TEST_CASE("verify_signature refuses mismatched hash and garbage") {
  Real q;
  auto sig = kl::tpm::parse_signature(q.parts.signature);
  CHECK(kl::tpm::verify_signature(q.ak.get(), sig, q.parts.attest));
  auto other_hash = sig;
  other_hash.hash_alg = 0x0004;
  CHECK_FALSE(kl::tpm::verify_signature(q.ak.get(), other_hash, q.parts.attest));
  auto sm3 = sig;
  sm3.hash_alg = 0x0012;
  CHECK_FALSE(kl::tpm::verify_signature(q.ak.get(), sm3, q.parts.attest));
  auto garbage = sig;
  garbage.rsa.assign(256, 0x42);
  CHECK_FALSE(kl::tpm::verify_signature(q.ak.get(), garbage, q.parts.attest));
  auto shorter = sig;
  shorter.rsa.resize(10);
  CHECK_FALSE(kl::tpm::verify_signature(q.ak.get(), shorter, q.parts.attest));
  CHECK_FALSE(kl::tpm::verify_signature(nullptr, sig, q.parts.attest));
}

TEST_CASE("verify_quote turns malformed parts into error texts") {
  Real q;
  REQUIRE(q.verify().ok());

  SECTION("truncated TPMS_ATTEST: the signature no longer covers it") {
    q.parts.attest.resize(100);
    CHECK(q.verify().error == "The quote's signature does not verify with the AK");
  }
  SECTION("garbage signature") {
    q.parts.signature = Bytes{0x00, 0x14, 0x00, 0x0B, 0x00, 0x03, 1, 2, 3};
    CHECK(q.verify().error == "The quote's signature does not verify with the AK");
  }
  SECTION("signature header only") {
    q.parts.signature = Bytes{0x00, 0x14};
    CHECK(q.verify().error == "TPMT_SIGNATURE truncated");
  }
  SECTION("signature length lies") {
    q.parts.signature[4] = 0xFF;
    CHECK(q.verify().error == "TPMT_SIGNATURE: signature too large");
  }
  SECTION("SM3 hash in the signature") {
    q.parts.signature[3] = 0x12;
    CHECK(q.verify().error == "Unsupported hash with id 0x12 in signature blob");
  }
  SECTION("PCR blob truncated / extended") {
    q.parts.pcr_blob.pop_back();
    CHECK(q.verify().error == "Failed to parse the entire pcrblob");
    q.parts.pcr_blob.resize(q.parts.pcr_blob.size() + 2);
    CHECK(q.verify().error == "Failed to parse the entire pcrblob");
  }
  SECTION("PCR blob sizeofSelect not 0 or 3") {
    q.parts.pcr_blob[6] = 4;
    CHECK(q.verify().error == "size_of_select must be either 0 or 3 but it is 4");
  }
  SECTION("PCR blob digest slot over 64 bytes") {
    q.parts.pcr_blob[136 + 4] = 65;
    CHECK(q.verify().error == "PCR blob: digest size 65 exceeds 64");
  }
  SECTION("PCR blob claiming a huge number of digest blocks") {
    q.parts.pcr_blob[132] = 0xFF;
    q.parts.pcr_blob[133] = 0xFF;
    CHECK(q.verify().error == "PCR blob: too many TPML_DIGEST blocks");
  }
  SECTION("PCR blob selects more PCRs than it carries values") {
    q.parts.pcr_blob[7] |= 0x01;  // also select PCR 0
    CHECK(q.verify().error == "pcr_values list is too short to get item 3");
  }
  SECTION("empty PCR blob") {
    q.parts.pcr_blob.clear();
    CHECK(q.verify().error == "PCR blob too short (0 bytes)");
  }
  SECTION("no AK") {
    CHECK(kl::quote::verify_quote(q.parts, q.nonce, "sha256", nullptr).error == "No AK to verify the quote with");
  }
}

TEST_CASE("parse_quote_string: type, tokens, base64") {
  Real q;
  const std::string good = kl::quote::make_quote_string(q.parts);
  CHECK_NOTHROW(kl::quote::parse_quote_string(good));
  CHECK(kl::quote::parse_quote_string(good + ":extra:tokens").pcr_blob == q.parts.pcr_blob);

  CHECK_THROWS_WITH(kl::quote::parse_quote_string("x" + good.substr(1)), "Invalid quote type x");
  CHECK_THROWS_AS(kl::quote::parse_quote_string(""), kl::ParseError);
  CHECK_THROWS_WITH(kl::quote::parse_quote_string("rAAAA:BBBB"), "Quote is not compound!");
  CHECK_THROWS_WITH(kl::quote::parse_quote_string("r"), "Quote is not compound!");
  CHECK_THROWS_WITH(kl::quote::parse_quote_string("r!!!!:AAAA:AAAA"), "quote: TPMS_ATTEST is not valid base64");
  CHECK_THROWS_WITH(kl::quote::parse_quote_string("rAAAA:A*A=:AAAA"), "quote: TPMT_SIGNATURE is not valid base64");
  CHECK_THROWS_WITH(kl::quote::parse_quote_string("rAAAA:AAAA:AAA"), "quote: PCR blob is not valid base64");
}
