// Failure semantics (ids, severities, merge) and the clock-info rules across quotes.
#include <catch2/catch.hpp>

#include "common/attest/parse_error.hpp"
#include "common/attest/quote/clock_check.hpp"
#include "common/attest/quote/failure.hpp"

using nlohmann::json;

TEST_CASE("Failure: ids, contexts, recoverability") {
  kl::Failure f(kl::Component::quote_validation);
  CHECK_FALSE(f.failed());
  CHECK(f.highest_severity_event() == nullptr);
  f.add_event("invalid_hash_alg", "Hash algorithm sha1 is not accepted", false);
  REQUIRE(f.events().size() == 1);
  CHECK(f.events()[0].event_id == "qoute_validation.invalid_hash_alg");
  CHECK(f.events()[0].component == "qoute_validation");
  CHECK(f.events()[0].context == json{{"message", "Hash algorithm sha1 is not accepted"}});
  CHECK(f.events()[0].context_text() == R"({"message": "Hash algorithm sha1 is not accepted"})");
  CHECK_FALSE(f.recoverable());
  CHECK(f.failed());

  kl::Failure ima(kl::Component::ima, {"validation"});
  ima.add_event("ima_hash", json{{"message", "hash mismatch"}, {"expected", "aa"}, {"got", "bb"}}, true, {"ima-ng"});
  CHECK(ima.events()[0].event_id == "ima.validation.ima-ng.ima_hash");
  CHECK(ima.recoverable());
  CHECK(ima.failed());
  CHECK(ima.events()[0].context_text() == R"({"expected": "aa", "got": "bb", "message": "hash mismatch"})");

  kl::Failure pcr(kl::Component::pcr_validation);
  pcr.merge(ima);
  CHECK(pcr.recoverable());
  pcr.merge(f);
  CHECK_FALSE(pcr.recoverable());
  CHECK(pcr.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.ima_hash", "qoute_validation.invalid_hash_alg"});
}

TEST_CASE("Failure: severity policy, forced maximum for irrecoverable, first highest wins") {
  kl::SeverityPolicy policy({"info", "warning", "error", "critical"},
                            {{"pcr_validation\\..*", "warning"}, {"ima\\..*", "error"}, {"tee.*", "nonsense"}});
  CHECK(policy.label_for("pcr_validation.invalid_pcr_15") == kl::SeverityLabel{"warning", 1});
  CHECK(policy.label_for("ima.validation.ima_hash") == kl::SeverityLabel{"error", 2});
  CHECK(policy.label_for("tee_attestation.x") == kl::SeverityLabel{"critical", 3});  // unknown label
  CHECK(policy.label_for("internal.verifier.exception") == kl::SeverityLabel{"critical", 3});  // no rule
  CHECK(policy.label_for("xpcr_validation.a") == kl::SeverityLabel{"critical", 3});  // full match only

  kl::Failure f(kl::Component::pcr_validation, {}, policy);
  f.add_event("invalid_pcr_1", "a", true);
  f.add_event("invalid_pcr_2", "b", true);
  CHECK(f.highest_severity_event() == &f.events()[0]);
  CHECK(f.highest_severity()->name == "warning");
  kl::Failure ima(kl::Component::ima, {}, policy);
  ima.add_event("x", "c", true);
  ima.add_event("y", "d", true);
  f.merge(ima);
  CHECK(f.highest_severity_event()->event_id == "ima.x");
  f.add_event("fatal", "e", false);
  CHECK(f.highest_severity()->name == "critical");
  CHECK(f.events().back().severity_label.name == "critical");

  // Re-labelling with the default policy: everything is "emergency", the first event wins the tie.
  f.apply_severity_policy(kl::SeverityPolicy());
  CHECK(f.highest_severity()->name == "emergency");
  CHECK(f.highest_severity_event()->event_id == "pcr_validation.invalid_pcr_1");

  CHECK_THROWS_AS(kl::SeverityPolicy({}, {{".*", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(kl::SeverityPolicy({"a"}, {}), std::invalid_argument);
  CHECK_THROWS_AS(kl::SeverityPolicy({"a"}, {{"(", "a"}}), std::invalid_argument);
}

TEST_CASE("Event::context_text escapes like Python json.dumps") {
  kl::Failure f(kl::Component::ima);
  f.add_event("x", json{{"message", "caf\xc3\xa9 \"q\"\n\x01"}, {"n", 5}, {"l", {1, true, nullptr}}}, true);
  CHECK(f.events()[0].context_text() ==
        R"({"l": [1, true, null], "message": "caf\u00e9 \"q\"\n\u0001", "n": 5})");
}

TEST_CASE("clock info across quotes") {
  using kl::tpm::ClockInfo;
  const ClockInfo prev{1000, 5, 2, true};
  auto check = [&](ClockInfo cur) { return kl::quote::check_clock(prev, cur); };

  SECTION("first quote after the initial state") {
    auto r = kl::quote::check_clock(kl::quote::initial_clock_info(), {5994, 0, 0, true});
    CHECK(r.ok());
    REQUIRE(r.update);
    CHECK(r.update->clock == 5994);
  }
  SECTION("normal progress") {
    auto r = check({2000, 5, 2, true});
    CHECK(r.ok());
    CHECK(r.update->clock == 2000);
  }
  SECTION("resetCount decreased") {
    CHECK(check({2000, 4, 2, true}).error == "resetCount value decreased on TPM between two consecutive quotes");
  }
  SECTION("restartCount decreased without a reset") {
    auto r = check({2000, 5, 1, true});
    CHECK(r.error == "restartCount value decreased on TPM between two consecutive quotes");
    CHECK_FALSE(r.update);
  }
  SECTION("reboot: resetCount grows, restartCount back to 0 (accepted, unlike Keylime)") {
    auto r = check({2100, 6, 0, true});
    CHECK(r.ok());
    CHECK(r.update->reset_count == 6);
  }
  SECTION("safe flag off") { CHECK(check({2000, 5, 2, false}).error == "clock safe flag is disabled"); }
  SECTION("clock did not increase") {
    CHECK(check({1000, 5, 2, true}).error ==
          "clock timestamp did issued by TPM did not increase between two consecutive quotes");
    CHECK(check({999, 5, 3, true}).error ==
          "clock timestamp did issued by TPM did not increase between two consecutive quotes");
  }
  SECTION("clock must increase across a reboot too (Keylime skips this check)") {
    CHECK_FALSE(check({500, 6, 3, true}).ok());
  }
  SECTION("failure value") {
    auto f = kl::quote::clock_failure("clock safe flag is disabled");
    REQUIRE(f.event_ids() == std::vector<std::string>{"qoute_validation.quote_validation"});
    CHECK(f.events()[0].context ==
          json{{"message", "Validation of clockinfo from quote using tpm2-tools"}, {"data", "clock safe flag is disabled"}});
    CHECK_FALSE(f.recoverable());
  }
}

TEST_CASE("tpm_clockinfo JSON round trip and malformed input") {
  kl::tpm::ClockInfo c{123456789012ull, 7, 3, true};
  auto j = kl::quote::clock_info_to_json(c);
  CHECK(j == json{{"clock", 123456789012ull}, {"resetCount", 7}, {"restartCount", 3}, {"safe", 1}});
  auto back = kl::quote::clock_info_from_json(j);
  CHECK(back.clock == c.clock);
  CHECK(back.reset_count == 7);
  CHECK(back.restart_count == 3);
  CHECK(back.safe);
  CHECK_FALSE(kl::quote::clock_info_from_json(json{{"clock", 1}, {"resetCount", 0}, {"restartCount", 0}, {"safe", false}}).safe);
  CHECK_THROWS_AS(kl::quote::clock_info_from_json(json{{"clock", 1}}), kl::ParseError);
  CHECK_THROWS_AS(kl::quote::clock_info_from_json(json{{"clock", -1}, {"resetCount", 0}, {"restartCount", 0}, {"safe", 1}}),
                  kl::ParseError);
  CHECK_THROWS_AS(kl::quote::clock_info_from_json(json{{"clock", 1}, {"resetCount", 1ull << 33}, {"restartCount", 0}, {"safe", 1}}),
                  kl::ParseError);
  CHECK_THROWS_AS(kl::quote::clock_info_from_json(json::array()), kl::ParseError);
}
