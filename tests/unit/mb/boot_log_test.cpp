#include <catch2/catch.hpp>

#include "common/attest/mb/boot_log.hpp"
#include "common/attest/parse_error.hpp"
#include "unit/mb/sample_logs.hpp"

using namespace kl;
using namespace kl::mb;
using namespace kl::mb::testing;

TEST_CASE("bootlog_parse of keylime issue #1153's log: no failure, pcrs and boot aggregates") {
  auto r = bootlog_parse(mb_log_b64_single_line(), crypto::HashAlg::sha256);
  CHECK_FALSE(r.failure.failed());
  REQUIRE(r.parsed);
  CHECK(r.pcrs.size() == 11);
  CHECK(hex_encode(r.pcrs.at(14)) == "43f0f3919109c5bb9ab6eb7a25857cc9c1eec6b512b6f44034de4b85a1e3d428");
  CHECK(r.parsed->data["boot_aggregates"]["sha256"].size() == 2);
}

TEST_CASE("bootlog_parse failure ids") {
  SECTION("no list, empty list: nothing to do") {
    CHECK_FALSE(bootlog_parse(std::nullopt, crypto::HashAlg::sha256).failure.failed());
    auto r = bootlog_parse(std::string(), crypto::HashAlg::sha256);
    CHECK_FALSE(r.failure.failed());
    CHECK_FALSE(r.parsed);
  }
  SECTION("bogus log -> measured_boot.parser.tpm2_eventlog.error") {
    auto r = bootlog_parse(base64_encode(read_bytes(mb_dir() + "binary_bios_measurements-bogus")), crypto::HashAlg::sha256);
    REQUIRE(r.failure.event_ids() == std::vector<std::string>{"measured_boot.parser.tpm2_eventlog.error"});
    const auto& ctx = r.failure.events()[0].context;
    CHECK(ctx["context"] == "tpm2_eventlog exited with non-zero return code");
    CHECK(ctx["code"] == 1);
    CHECK_FALSE(ctx["data"].get<std::string>().empty());
    CHECK(r.failure.recoverable());
    CHECK_FALSE(r.parsed);
  }
  SECTION("truncated log -> tpm2_eventlog.error naming the truncation") {
    auto bytes = read_bytes(mb_dir() + "binary_bios_measurements-secureboot");
    bytes.resize(bytes.size() - 7);
    auto r = bootlog_parse(base64_encode(bytes), crypto::HashAlg::sha256);
    REQUIRE(r.failure.event_ids() == std::vector<std::string>{"measured_boot.parser.tpm2_eventlog.error"});
    CHECK_THAT(r.failure.events()[0].context["data"].get<std::string>(), Catch::Contains("truncated"));
  }
  SECTION("no digests in the quote's bank -> invalid_pcrs_hashes") {
    auto r = bootlog_parse(base64_encode(read_bytes(mb_dir() + "binary_bios_measurements-secureboot")),
                           crypto::HashAlg::sha1);
    REQUIRE(r.failure.event_ids() == std::vector<std::string>{"measured_boot.parser.invalid_pcrs_hashes"});
    CHECK(r.failure.events()[0].context == nlohmann::json{{"got", nullptr}});
  }
  SECTION("two-bank log in either bank") {
    auto b64 = base64_encode(read_bytes(mb_dir() + "binary_bios_measurements"));
    auto r1 = bootlog_parse(b64, crypto::HashAlg::sha1);
    CHECK_FALSE(r1.failure.failed());
    CHECK(hex_encode(r1.pcrs.at(14)) == "ffaf5dfab351dc9b3b7a3cf748759e137f1601a8");
    auto r256 = bootlog_parse(b64, crypto::HashAlg::sha256);
    CHECK(hex_encode(r256.pcrs.at(7)) == "741fd028c51b4d2fbdcc7f28014cc758d17ccc1fe2ea7ca17b0e8009480a557c");
  }
  SECTION("undecodable base64 throws (the verifier reports internal.verifier.exception)") {
    CHECK_THROWS_AS(bootlog_parse(std::string("AAAA*AAA"), crypto::HashAlg::sha256), ParseError);
    CHECK_THROWS_AS(bootlog_parse(read_text(mb_dir() + "mb_log.b64"), crypto::HashAlg::sha256), ParseError);  // newlines
  }
}
