#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "common/attest/mb/event_log.hpp"
#include "common/attest/mb/replay.hpp"
#include "common/attest/parse_error.hpp"
#include "unit/mb/sample_logs.hpp"

using namespace kl;
using namespace kl::mb;
using namespace kl::mb::testing;

namespace {

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Offset of the EventSize field of the record starting at `off`, for a log of one bank of digest size n.
std::size_t event_size_field(const Bytes& b, std::size_t off, std::size_t n) {
  (void)b;
  return off + 12 + 2 + n;
}

}  // namespace

TEST_CASE("every valid sample parses event by event as tpm2_eventlog decodes it") {
  for (const auto& s : valid_samples()) {
    INFO(s.name);
    auto bytes = sample_bytes(s);
    auto yaml = read_yaml_reference(mb_dir() + s.yaml);
    auto log = parse_event_log(bytes);
    REQUIRE(log.events.size() == yaml.events.size());
    REQUIRE(log.events.size() > 50);
    for (std::size_t i = 0; i < log.events.size(); ++i) {
      const auto& e = log.events[i];
      const auto& y = yaml.events[i];
      INFO("event " << i);
      CHECK(e.number == y.num);
      CHECK(e.pcr == y.pcr);
      CHECK(event_type_name(e.type) == y.type);
      CHECK(e.data.size() == y.event_size);
      if (i == 0) continue;  // header: SHA-1 digest line has no AlgorithmId
      REQUIRE(e.digests.size() == y.digests.size());
      for (std::size_t d = 0; d < e.digests.size(); ++d) {
        CHECK(std::string(crypto::hash_name(*e.digests[d].alg)) == y.digests[d].first);
        CHECK(hex_encode(e.digests[d].digest) == y.digests[d].second);
      }
    }
  }
}

TEST_CASE("Spec ID header of the two-bank sample") {
  auto log = parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements"));
  REQUIRE(log.spec_id.algorithms.size() == 2);
  CHECK(log.spec_id.algorithms[0].algorithm_id == 0x0004);
  CHECK(log.spec_id.algorithms[0].digest_size == 20);
  CHECK(log.spec_id.algorithms[1].algorithm_id == 0x000B);
  CHECK(log.spec_id.algorithms[1].digest_size == 32);
  CHECK(log.spec_id.spec_version_major == 2);
  CHECK(log.spec_id.uintn_size == 2);
  CHECK(startup_locality(log) == std::optional<std::uint8_t>(3));
  auto sb = parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements-secureboot"));
  CHECK(sb.spec_id.algorithms.size() == 1);
  CHECK_FALSE(startup_locality(sb).has_value());
}

TEST_CASE("bogus and empty samples are parse errors with a reason") {
  CHECK_THROWS_WITH(parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements-empty")),
                    Catch::Contains("empty"));
  auto bogus = read_bytes(mb_dir() + "binary_bios_measurements-bogus");
  REQUIRE(bogus.size() == 34);
  CHECK_THROWS_AS(parse_event_log(bogus), ParseError);
}

TEST_CASE("every truncation of a valid log is either a clean prefix or a ParseError") {
  auto bytes = read_bytes(mb_dir() + "binary_bios_measurements-secureboot");
  auto full = parse_event_log(bytes);
  // Record boundaries: a cut exactly there is a valid shorter log.
  std::vector<std::size_t> boundaries;
  for (std::size_t i = 1; i < full.events.size(); ++i) boundaries.push_back(full.events[i].offset);
  boundaries.push_back(bytes.size());
  std::size_t errors = 0, prefixes = 0;
  for (std::size_t cut = 1; cut < bytes.size(); cut += (cut < 2000 ? 1 : 97)) {
    kl::ByteView view(bytes.data(), cut);
    bool boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (boundary) {
      auto part = parse_event_log(view);
      CHECK(part.events.back().offset + 1 <= cut);
      ++prefixes;
    } else {
      CHECK_THROWS_AS(parse_event_log(view), ParseError);
      ++errors;
    }
  }
  CHECK(errors > 1000);
  CHECK(prefixes >= 1);
}

TEST_CASE("lying length fields are rejected, never followed") {
  auto bytes = read_bytes(mb_dir() + "binary_bios_measurements-secureboot");
  auto log = parse_event_log(bytes);
  const std::size_t off = log.events[1].offset;

  SECTION("EventSize larger than the rest of the log") {
    Bytes b = bytes;
    put32(b, event_size_field(b, off, 32), 0xFFFFFFF0u);
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("truncated") && Catch::Contains("event data"));
  }
  SECTION("EventSize of the last event one byte too long") {
    Bytes b = bytes;
    const auto& last = log.events.back();
    put32(b, event_size_field(b, last.offset, 32), static_cast<std::uint32_t>(last.data.size() + 1));
    CHECK_THROWS_AS(parse_event_log(b), ParseError);
  }
  SECTION("DigestCount larger than the declared banks") {
    Bytes b = bytes;
    put32(b, off + 8, 2);
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("2 digests"));
  }
  SECTION("DigestCount of 2^32-1") {
    Bytes b = bytes;
    put32(b, off + 8, 0xFFFFFFFFu);
    CHECK_THROWS_AS(parse_event_log(b), ParseError);
  }
  SECTION("undeclared hash algorithm in a record") {
    Bytes b = bytes;
    b[off + 12] = 0x0C;  // sha384, header only declares sha256
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("not declared"));
  }
  SECTION("header: numberOfAlgorithms huge") {
    Bytes b = bytes;
    put32(b, 32 + 24, 0x7FFFFFFFu);  // after 32-byte record head + 24 bytes of Spec ID fields
    CHECK_THROWS_AS(parse_event_log(b), ParseError);
  }
  SECTION("header: digest size that contradicts the algorithm") {
    Bytes b = bytes;
    b[32 + 28 + 2] = 20;  // sha256 declared with 20 bytes
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("does not match sha256"));
  }
  SECTION("first record not EV_NO_ACTION") {
    Bytes b = bytes;
    put32(b, 4, 0x80000001u);
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("expected EV_NO_ACTION"));
  }
  SECTION("SHA-1 log without Spec ID signature") {
    Bytes b = bytes;
    std::memcpy(b.data() + 32, "Spec ID Event02", 15);
    CHECK_THROWS_WITH(parse_event_log(b), Catch::Contains("Spec ID Event03"));
  }
  SECTION("limits") {
    ParseLimits small;
    small.max_events = 10;
    CHECK_THROWS_WITH(parse_event_log(bytes, small), Catch::Contains("more than 10 events"));
    small = {};
    small.max_log_bytes = 1000;
    CHECK_THROWS_WITH(parse_event_log(bytes, small), Catch::Contains("exceeds"));
  }
}

TEST_CASE("random byte flips give a parsed log or a ParseError, and replay never fails on a parsed one") {
  auto bytes = read_bytes(mb_dir() + "binary_bios_measurements");
  std::mt19937 rng(1234);
  std::size_t parsed = 0, rejected = 0;
  for (int round = 0; round < 400; ++round) {
    Bytes b = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    try {
      auto log = parse_event_log(b);
      auto banks = replay_pcrs(log);
      CHECK(!log.events.empty());
      (void)banks;
      ++parsed;
    } catch (const ParseError&) {
      ++rejected;
    }
  }
  CHECK(parsed + rejected == 400);
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}
