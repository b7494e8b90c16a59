#include <catch2/catch.hpp>

#include "common/attest/mb/event_log.hpp"
#include "common/attest/mb/replay.hpp"
#include "unit/mb/sample_logs.hpp"

using namespace kl;
using namespace kl::mb;
using namespace kl::mb::testing;

TEST_CASE("replayed PCRs equal tpm2_eventlog's for every bank of every sample") {
  for (const auto& s : valid_samples()) {
    INFO(s.name);
    auto log = parse_event_log(sample_bytes(s));
    auto banks = replay_pcrs(log);
    auto yaml = read_yaml_reference(mb_dir() + s.yaml);
    REQUIRE(!yaml.pcrs.empty());
    REQUIRE(banks.size() == yaml.pcrs.size());
    for (const auto& [bank_name, pcrs] : yaml.pcrs) {
      auto alg = crypto::hash_from_name(bank_name);
      REQUIRE(alg);
      REQUIRE(banks.count(*alg));
      const auto& mine = banks.at(*alg);
      REQUIRE(mine.size() == pcrs.size());
      for (const auto& [n, hex] : pcrs) {
        INFO(bank_name << " PCR " << n);
        REQUIRE(mine.count(n));
        // PCR 0 of a log with a StartupLocality event: tpm2-tools 5.4 got it wrong (next test case).
        if (n == 0 && startup_locality(log)) continue;
        CHECK(hex_encode(mine.at(n)) == hex);
      }
    }
  }
}

TEST_CASE("PCR 0 starts from the StartupLocality value, not from tpm2-tools 5.4's extension of it") {
  auto log = parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements"));
  REQUIRE(startup_locality(log) == std::optional<std::uint8_t>(3));
  auto banks = replay_pcrs(log);
  for (auto alg : {crypto::HashAlg::sha1, crypto::HashAlg::sha256}) {
    INFO(crypto::hash_name(alg));
    const std::size_t n = crypto::digest_size(alg);
    // Independent recomputation: what a TPM started from locality 3 holds, and what tpm2-tools 5.4 printed
    // (it extended the EV_NO_ACTION's zero digest from a zero start).
    Bytes real(n, 0), old54(n, 0);
    real.back() = 3;
    for (std::size_t i = 1; i < log.events.size(); ++i) {
      const auto& e = log.events[i];
      if (e.pcr != 0) continue;
      for (const auto& d : e.digests) {
        if (d.alg != alg) continue;
        Bytes b = old54;
        b.insert(b.end(), d.digest.begin(), d.digest.end());
        old54 = crypto::digest(alg, b);
        if (e.type == ev::kNoAction) continue;
        b = real;
        b.insert(b.end(), d.digest.begin(), d.digest.end());
        real = crypto::digest(alg, b);
      }
    }
    auto yaml = read_yaml_reference(mb_dir() + "binary_bios_measurements.tpm2_eventlog-5.4.yaml");
    CHECK(hex_encode(old54) == yaml.pcrs.at(std::string(crypto::hash_name(alg))).at(0));
    CHECK(hex_encode(banks.at(alg).at(0)) == hex_encode(real));
    CHECK(real != old54);
  }
  CHECK(hex_encode(banks.at(crypto::HashAlg::sha256).at(0)) ==
        "0ee9a7feba8f4172f1a7451594aa5731665a4d353ac61814042ce107a00742f2");
}

TEST_CASE("boot aggregates hash PCRs 0-7 and 0-9") {
  auto log = parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements-secureboot"));
  auto banks = replay_pcrs(log);
  const auto& bank = banks.at(crypto::HashAlg::sha256);
  auto aggs = boot_aggregates(crypto::HashAlg::sha256, bank);
  REQUIRE(aggs.size() == 2);
  Bytes eight, ten;
  for (std::uint32_t p = 0; p < 10; ++p) {
    if (p < 8) eight.insert(eight.end(), bank.at(p).begin(), bank.at(p).end());
    ten.insert(ten.end(), bank.at(p).begin(), bank.at(p).end());
  }
  CHECK(aggs[0] == hex_encode(crypto::digest(crypto::HashAlg::sha256, eight)));
  CHECK(aggs[1] == hex_encode(crypto::digest(crypto::HashAlg::sha256, ten)));
  PcrBank partial = bank;
  partial.erase(9);
  CHECK(boot_aggregates(crypto::HashAlg::sha256, partial) == std::vector<std::string>{aggs[0]});
  partial.erase(3);
  CHECK(boot_aggregates(crypto::HashAlg::sha256, partial).empty());
}

TEST_CASE("quoted PCRs are matched against the replay as Keylime does") {
  auto log = parse_event_log(read_bytes(mb_dir() + "binary_bios_measurements-secureboot"));
  const auto banks = replay_pcrs(log);
  const auto& bank = banks.at(crypto::HashAlg::sha256);
  QuotedPcrs quoted;
  for (const auto& [n, v] : bank) quoted[n] = hex_encode(v);
  quoted[11] = std::string(64, '0');  // never extended by the log: log value counts as 0
  quoted[16] = "ab";                  // not a measured-boot PCR here
  std::set<std::uint32_t> check = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15};

  SECTION("all equal") {
    Failure f(Component::measured_boot);
    auto compared = match_quoted_pcrs(bank, quoted, check, f);
    CHECK_FALSE(f.failed());
    CHECK(compared == std::set<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14});
  }
  SECTION("a changed PCR 4 is measured_boot.invalid_pcr_4 with got/expected") {
    quoted[4][0] = quoted[4][0] == 'a' ? 'b' : 'a';
    Failure f(Component::measured_boot);
    match_quoted_pcrs(bank, quoted, check, f);
    REQUIRE(f.event_ids() == std::vector<std::string>{"measured_boot.invalid_pcr_4"});
    const auto& ctx = f.events()[0].context;
    CHECK(ctx["context"] == "SHA256 boot event log PCR value does not match");
    CHECK(ctx["got"] == quoted[4]);
    CHECK(ctx["expected"] == hex_encode(bank.at(4)));
    CHECK(f.recoverable());
  }
  SECTION("a PCR the log never touched but the quote has non-zero") {
    quoted[12] = std::string(63, '0') + "1";
    Failure f(Component::measured_boot);
    match_quoted_pcrs(bank, quoted, check, f);
    REQUIRE(f.event_ids() == std::vector<std::string>{"measured_boot.invalid_pcr_12"});
    CHECK(f.events()[0].context["expected"] == "0");
  }
}
