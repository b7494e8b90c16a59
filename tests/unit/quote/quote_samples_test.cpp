// The Keylime quote samples (testdata/keylime/tpm/quotes, MANIFEST.md) with their expected verdicts.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>

#include "common/attest/parse_error.hpp"
#include "common/attest/quote/quote_verify.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kQuotes = std::string(KL_TESTDATA_DIR) + "/keylime/tpm/quotes/";

nlohmann::json sample(const std::string& name) { return nlohmann::json::parse(slurp(kQuotes + name)); }

kl::ossl::Pkey pem_key(const std::string& pem) {
  kl::ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  kl::ossl::Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  return key;
}

kl::quote::QuoteCheck check(const nlohmann::json& s) {
  auto parts = kl::quote::parse_quote_string(s.at("quote").get<std::string>());
  auto key = pem_key(s.at("ak_pem").get<std::string>());
  return kl::quote::verify_quote(parts, s.at("nonce").get<std::string>(), s.at("hash_alg").get<std::string>(),
                                 key.get());
}

}  // namespace

TEST_CASE("every quote sample gets its manifest verdict") {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kQuotes)) {
    if (entry.path().extension() != ".json") continue;
    auto s = nlohmann::json::parse(slurp(entry.path().string()));
    INFO(entry.path().filename().string());
    auto result = check(s);
    CHECK(result.ok() == (s.at("expected") == "pass"));
    ++seen;
  }
  CHECK(seen == 6);
}

TEST_CASE("good quote: PCR 16 value and failure is empty") {
  auto r = check(sample("tpm_util_test_checkquote_good.json"));
  REQUIRE(r.ok());
  CHECK(r.error.empty());
  CHECK_FALSE(r.to_failure().failed());
  CHECK(r.quote->hash_alg == kl::crypto::HashAlg::sha256);
  REQUIRE(r.quote->pcrs.size() == 1);
  CHECK(r.quote->pcrs.count(16) == 1);
  CHECK(kl::as_string(r.quote->attest.extra_data) == "Ai5M5SjYjnkyv4P7itH1");
}

TEST_CASE("bad samples fail for the documented reason") {
  SECTION("flipped attest byte: signature") {
    auto r = check(sample("tpm_util_test_checkquote_bad_quoteblob.json"));
    CHECK(r.error == "The quote's signature does not verify with the AK");
  }
  SECTION("nonce") {
    auto r = check(sample("tpm_util_test_checkquote_bad_nonce.json"));
    CHECK(r.error == "The nonce from the attestation differs from the expected nonce");
  }
  SECTION("pcr blob without a selection for the signing bank") {
    auto r = check(sample("tpm_util_test_checkquote_bad_pcrblob.json"));
    CHECK(r.error == "PCR blob has no selection for the quote's hash algorithm 0xb");
  }
  SECTION("expected hash algorithm") {
    auto r = check(sample("tpm_util_test_checkquote_wrong_expected_hash.json"));
    CHECK(r.error == "Quote was expected to use sha1 but used sha256 instead");
    auto f = r.to_failure();
    REQUIRE(f.events().size() == 1);
    CHECK(f.events()[0].event_id == "qoute_validation.quote_validation");
    CHECK(f.events()[0].context ==
          nlohmann::json{{"message", "Quote data validation"}, {"error", r.error}});
    CHECK_FALSE(f.recoverable());
    CHECK(f.events()[0].severity_label.name == "emergency");
  }
}

TEST_CASE("tpm2-tools derived sample: PCRs, clock info, base64 nonce fallback, AK from ak_tpm") {
  auto s = sample("test_data_files_quote.json");
  auto parts = kl::quote::parse_quote_string(s.at("quote").get<std::string>());
  auto ak_tpm = kl::base64_decode(s.at("ak_tpm").get<std::string>());
  REQUIRE(ak_tpm);
  auto ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(*ak_tpm));
  auto r = kl::quote::verify_quote(parts, s.at("nonce").get<std::string>(), "sha256", ak.get());
  REQUIRE(r.ok());
  auto hex = kl::quote::pcrs_hex(r.quote->pcrs);
  std::map<std::uint32_t, std::string> expected;
  for (auto& [k, v] : s.at("pcrs").items()) expected[static_cast<std::uint32_t>(std::stoul(k))] = v;
  CHECK(hex == expected);
  CHECK(r.quote->clock.clock == s["clock_info"]["clock"].get<std::uint64_t>());
  CHECK(r.quote->clock.reset_count == 0);
  CHECK(r.quote->clock.restart_count == 0);
  CHECK(r.quote->clock.safe);
  // The raw nonce bytes are not a string the verifier sent: a different nonce must fail.
  auto bad = kl::quote::verify_quote(parts, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "sha256", ak.get());
  CHECK(bad.error == "The nonce from the attestation differs from the expected nonce");
}

TEST_CASE("tpm2-tools files: quote.out / quotesig.out / quotepcr.out with ak.pub") {
  const std::string dir = std::string(KL_TESTDATA_DIR) + "/keylime/tpm/tpm2-tools-files/";
  kl::quote::QuoteParts parts;
  auto attest = slurp(dir + "quote.out");
  auto sig = slurp(dir + "quotesig.out");
  auto pcr = slurp(dir + "quotepcr.out");
  parts.attest.assign(attest.begin(), attest.end());
  parts.signature.assign(sig.begin(), sig.end());
  parts.pcr_blob.assign(pcr.begin(), pcr.end());
  auto akpub = slurp(dir + "ak.pub");
  auto ak = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(kl::as_bytes(akpub)));

  auto a = kl::tpm::parse_attest(parts.attest);
  CHECK(a.magic == kl::tpm::kTpmGeneratedValue);
  CHECK(a.type == kl::tpm::kStAttestQuote);
  REQUIRE(a.pcr_select.size() == 1);
  CHECK(a.pcr_select[0].hash_alg == 0x000B);
  CHECK(a.pcr_select[0].pcrs == std::vector<std::uint32_t>{15, 16, 22});
  CHECK(a.pcr_digest.size() == 32);
  CHECK(a.extra_data.size() == 20);

  // The nonce is the raw extraData; hand it over base64-encoded as push mode does.
  const std::string nonce = kl::base64_encode(a.extra_data);
  auto r = kl::quote::verify_quote(parts, nonce, "sha256", ak.get());
  REQUIRE(r.ok());
  CHECK(r.quote->pcrs.size() == 3);
  CHECK(kl::hex_encode(r.quote->pcrs.at(15)) == std::string(64, '0'));

  // Same files through the quote string round trip.
  auto again = kl::quote::parse_quote_string(kl::quote::make_quote_string(parts));
  CHECK(again.attest == parts.attest);
  CHECK(again.signature == parts.signature);
  CHECK(again.pcr_blob == parts.pcr_blob);

  // Wrong AK: the EK public area is an RSA key too, but not the signer.
  auto ekpub = slurp(dir + "ek.pub");
  auto ek = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(kl::as_bytes(ekpub)));
  CHECK(kl::quote::verify_quote(parts, nonce, "sha256", ek.get()).error ==
        "The quote's signature does not verify with the AK");
}
