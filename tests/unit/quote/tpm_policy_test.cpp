// tpm_policy normalisation, mask handling and evaluation (verification.md §2), with Keylime's event ids.
#include <catch2/catch.hpp>

// Designated initialisers leave the other PcrPolicyInput fields at their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "common/attest/parse_error.hpp"
#include "common/attest/quote/tpm_policy.hpp"

using nlohmann::json;
using namespace kl::quote;

namespace {
const std::string kPem = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n";
const std::string kA = std::string(64, 'a');
const std::string kB = std::string(64, 'b');
const std::string kC = std::string(64, 'c');
}  // namespace

TEST_CASE("mask helpers follow Python hex() / int(x, 0)") {
  CHECK(mask_hex(0) == "0x0");
  CHECK(mask_hex((1u << 15) | (1u << 22)) == "0x408000");
  CHECK(parse_mask("0x408400") == 0x408400u);
  CHECK(parse_mask("0X10") == 16u);
  CHECK(parse_mask("1024") == 1024u);
  CHECK(parse_mask("0") == 0u);
  CHECK(parse_mask("0b101") == 5u);
  CHECK_FALSE(parse_mask("0x"));
  CHECK_FALSE(parse_mask("abc"));
  CHECK_FALSE(parse_mask("010"));
  CHECK_FALSE(parse_mask(""));
  CHECK_FALSE(parse_mask("0x1FFFFFFFF"));
  CHECK(mask_has("0x408400", 10));
  CHECK(mask_has("0x408400", 22));
  CHECK_FALSE(mask_has("0x408400", 16));
  CHECK_FALSE(mask_has("junk", 0));
}

TEST_CASE("normalize_tpm_policy: wraps, lower-cases, computes the mask") {
  auto p = normalize_tpm_policy(json::parse(R"({"15": "ABCDEF", "22": ["00FF", "aa"]})"));
  CHECK(p == json::parse(R"({"15": ["abcdef"], "22": ["00ff", "aa"], "mask": "0x408000"})"));
  CHECK(normalize_tpm_policy(json::object()) == json::parse(R"({"mask": "0x0"})"));

  CHECK_THROWS_WITH(normalize_tpm_policy(json::parse(R"({"16": "aa"})")),
                    "Invalid allowlist PCR number 16, keylime uses this PCR to bind data.");
  CHECK_THROWS_WITH(normalize_tpm_policy(json::parse(R"({"10": "aa"})")),
                    "Invalid allowlist PCR number 10, this PCR is used for IMA.");
  CHECK_THROWS_WITH(normalize_tpm_policy(json::parse(R"({"25": "aa"})")), "Invalid tpm policy pcr number: 25");
  CHECK_THROWS_WITH(normalize_tpm_policy(json::parse(R"({"mask": "0x1"})")), "Invalid tpm policy pcr number: mask");
  CHECK_THROWS_WITH(normalize_tpm_policy(json::parse(R"({"-1": "aa"})")), "Invalid tpm policy pcr number: -1");
  CHECK_THROWS_AS(normalize_tpm_policy(json::parse(R"({"1": 5})")), kl::ParseError);
  CHECK_THROWS_AS(normalize_tpm_policy(json::parse(R"({"1": [5]})")), kl::ParseError);
  CHECK_THROWS_AS(normalize_tpm_policy(json::parse(R"(["1"])")), kl::ParseError);
}

TEST_CASE("widen_mask: IMA and measured boot bits, protected PCRs rejected") {
  auto p = normalize_tpm_policy(json::parse(R"({"22": "aa"})"));
  widen_mask(p, {.ima = true});
  CHECK(p["mask"] == "0x400400");
  widen_mask(p, {.measured_boot = true});
  CHECK(p["mask"] == "0x40ffff");  // PCR 10 from IMA stays set

  auto only_mb = normalize_tpm_policy(json::parse(R"({"22": "aa"})"));
  widen_mask(only_mb, {.measured_boot = true});
  CHECK(only_mb["mask"] == "0x40fbff");

  auto mb = normalize_tpm_policy(json::parse(R"({"7": "aa"})"));
  CHECK_NOTHROW(widen_mask(mb, {.ima = true}));
  CHECK_THROWS_WITH(widen_mask(mb, {.measured_boot = true}),
                    "PCR 7 is specified in \"tpm_policy\", but will in fact be used by measured boot. Please remove it "
                    "from policy");
}

TEST_CASE("parse_tpm_policy: stored forms") {
  auto p = parse_tpm_policy_text(R"({"15": ["aa", "bb"], "22": "cc", "mask": "0x408000"})");
  CHECK(p.mask == "0x408000");
  CHECK(p.allowed.at(15) == std::vector<std::string>{"aa", "bb"});
  CHECK(p.allowed.at(22) == std::vector<std::string>{"cc"});
  CHECK(parse_tpm_policy_text("").allowed.empty());
  CHECK(parse_tpm_policy(json()).allowed.empty());
  CHECK(parse_tpm_policy(json("{\"1\": [\"aa\"]}")).allowed.at(1).size() == 1);
  CHECK_THROWS_AS(parse_tpm_policy_text("{"), kl::ParseError);
  CHECK_THROWS_AS(parse_tpm_policy_text(R"({"x": ["aa"]})"), kl::ParseError);
  CHECK_THROWS_AS(parse_tpm_policy_text(R"({"1": {"a": 1}})"), kl::ParseError);
  CHECK_THROWS_AS(parse_tpm_policy_text("[1,2]"), kl::ParseError);
}

TEST_CASE("data PCR 16 binds the agent's public key") {
  // H(0^32 || H(pem)) computed independently: sha256 over 32 zero bytes then the key digest.
  const std::string expected = expected_data_pcr(kPem, kl::crypto::HashAlg::sha256);
  kl::Bytes buf(32, 0);
  auto h = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(kPem));
  buf.insert(buf.end(), h.begin(), h.end());
  CHECK(expected == kl::hex_encode(kl::crypto::digest(kl::crypto::HashAlg::sha256, buf)));
  CHECK(expected_data_pcr(kPem, kl::crypto::HashAlg::sha1).size() == 40);

  TpmPolicy policy;
  SECTION("match") {
    auto f = validate_tpm_policy({{16, expected}}, policy, kl::crypto::HashAlg::sha256, {.pubkey_pem = kPem});
    CHECK_FALSE(f.failed());
  }
  SECTION("mismatch") {
    auto f = validate_tpm_policy({{16, kA}}, policy, kl::crypto::HashAlg::sha256, {.pubkey_pem = kPem});
    REQUIRE(f.event_ids() == std::vector<std::string>{"pcr_validation.invalid_pcr_16"});
    CHECK(f.events()[0].context == json{{"got", kA}, {"expected", expected}});
    CHECK(f.recoverable());
  }
  SECTION("missing") {
    auto f = validate_tpm_policy({{15, kA}}, policy, kl::crypto::HashAlg::sha256, {.pubkey_pem = kPem});
    REQUIRE(f.event_ids() == std::vector<std::string>{"pcr_validation.missing_pcr_16"});
    CHECK(f.events()[0].context == json{{"message", "Data PCR 16 is missing in quote, but is required"}});
  }
  SECTION("push mode / one-shot skip it") {
    auto f = validate_tpm_policy({{15, kA}}, policy, kl::crypto::HashAlg::sha256, {});
    CHECK_FALSE(f.failed());
  }
  SECTION("the sample quote's PCR 16 is not bound to an unrelated key") {
    auto f = validate_tpm_policy({{16, "9dbb22387e019c04da95477333546082ce313152c4a7f8a6e1d5f0c77f4fb6f0"}}, policy,
                                 kl::crypto::HashAlg::sha256, {.pubkey_pem = kPem});
    CHECK(f.has_event("pcr_validation.invalid_pcr_16"));
  }
}

TEST_CASE("allowlist evaluation: match, mismatch, missing, unlisted PCRs ignored") {
  auto policy = parse_tpm_policy(normalize_tpm_policy(json::parse(
      "{\"15\": [\"" + kA + "\", \"" + kB + "\"], \"22\": \"" + kC + "\", \"7\": \"" + kA + "\"}")));
  CHECK(policy.mask == "0x408080");
  const auto sha256 = kl::crypto::HashAlg::sha256;

  SECTION("all match") {
    auto f = validate_tpm_policy({{7, kA}, {15, kB}, {22, kC}, {3, kB}}, policy, sha256, {});
    CHECK_FALSE(f.failed());
    CHECK(f.events().empty());
  }
  SECTION("one mismatch -> invalid_pcr_<n> with got/expected") {
    auto f = validate_tpm_policy({{7, kA}, {15, kC}, {22, kC}}, policy, sha256, {});
    REQUIRE(f.event_ids() == std::vector<std::string>{"pcr_validation.invalid_pcr_15"});
    CHECK(f.events()[0].context ==
          json{{"context", "PCR value is not in allowlist"}, {"got", kC}, {"expected", {kA, kB}}});
    CHECK(f.recoverable());
    CHECK(f.failed());
  }
  SECTION("upper-case quote value does not match (exact string comparison)") {
    std::string upper = kA;
    for (auto& c : upper) c = static_cast<char>(std::toupper(c));
    auto f = validate_tpm_policy({{7, upper}, {15, kA}, {22, kC}}, policy, sha256, {});
    CHECK(f.event_ids() == std::vector<std::string>{"pcr_validation.invalid_pcr_7"});
  }
  SECTION("missing PCRs listed ascending, after the mismatches") {
    auto f = validate_tpm_policy({{22, kA}}, policy, sha256, {});
    REQUIRE(f.event_ids() ==
            std::vector<std::string>{"pcr_validation.invalid_pcr_22", "pcr_validation.missing_pcrs"});
    CHECK(f.events()[1].context == json{{"context", "PCRs are missing in quote"}, {"data", {7, 15}}});
  }
  SECTION("PCRs handled elsewhere are neither re-checked nor missing") {
    auto f = validate_tpm_policy({{22, kC}}, policy, sha256, {.handled = {7, 15}});
    CHECK_FALSE(f.failed());
  }
  SECTION("PCR 10 without a measurement list") {
    auto f = validate_tpm_policy({{10, kA}, {7, kA}, {15, kA}, {22, kC}}, policy, sha256, {.pcr10_unused = true});
    REQUIRE(f.event_ids() == std::vector<std::string>{"pcr_validation.unused_pcr_10"});
    CHECK(f.events()[0].context == json{{"message", "IMA PCR in policy, but no measurement list provided"}});
  }
  SECTION("event order: data PCR, PCR 10, allowlist, missing") {
    auto f = validate_tpm_policy({{10, kA}, {15, kC}}, policy, sha256, {.pubkey_pem = kPem, .pcr10_unused = true});
    CHECK(f.event_ids() == std::vector<std::string>{"pcr_validation.missing_pcr_16", "pcr_validation.unused_pcr_10",
                                                    "pcr_validation.invalid_pcr_15", "pcr_validation.missing_pcrs"});
  }
}

TEST_CASE("mask handling end to end: tenant policy -> mask sent to agent -> verdict") {
  auto stored = normalize_tpm_policy(json::parse("{\"15\": \"" + kA + "\"}"));
  widen_mask(stored, {.ima = true});
  const std::string mask = stored["mask"];
  CHECK(mask == "0x8400");
  CHECK(mask_has(mask, 15));
  CHECK(mask_has(mask, 10));
  CHECK_FALSE(mask_has(mask, 16));  // the agent adds PCR 16 by itself
  auto policy = parse_tpm_policy(stored);
  CHECK(policy.mask == mask);
  // The agent quoted what the mask asked for plus PCR 16; IMA handled PCR 10.
  auto f = validate_tpm_policy({{10, kB}, {15, kA}, {16, expected_data_pcr(kPem, kl::crypto::HashAlg::sha256)}},
                               policy, kl::crypto::HashAlg::sha256, {.pubkey_pem = kPem, .handled = {10}});
  CHECK_FALSE(f.failed());
}
