// The registrar-facing one-call check (surrogate.hpp) and robustness of the parsers against mutated input.
#include <catch2/catch.hpp>

#include <random>

#include "common/attest/azure/hcl_report.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/attest/snp/surrogate.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;

TEST_CASE("check_snp_surrogate: the spec §6 pipeline with verdicts per step", "[snp][surrogate]") {
  snptest::TempDir dir;
  snptest::write_store(snptest::test_chain(), dir.path);
  StoreCertSource src(snptest::test_store_options(dir.path));
  Bytes chip = snptest::chip_id_of(5);
  snptest::LeafSpec ls;
  ls.hw_id = chip;
  auto vcek = snptest::make_leaf(snptest::test_chain(), ls);
  Bytes ek = snptest::sample_ek_tpm();

  auto make = [&](snptest::ReportSpec s) {
    s.chip_id = chip;
    if (s.report_data.empty()) s.report_data = expected_report_data(ek);
    Bytes raw = snptest::build_report(s);
    snptest::sign_report(raw, vcek.key.get());
    CertTable t;
    t.vcek = vcek.der;
    Bytes table = build_cert_table(t);
    raw.insert(raw.end(), table.begin(), table.end());  // extended report: VCEK travels with it
    return raw;
  };
  SurrogateOptions o;
  o.verify.certs = &src;
  o.verify.product = Product::milan;

  SECTION("positive, and the stored summary") {
    Bytes ekcert = make({});
    SurrogateResult r = check_snp_surrogate(ekcert, ek, o);
    INFO(r.message());
    REQUIRE(r.ok());
    auto j = surrogate_summary(r.report, r.verify, ekcert);
    CHECK(j["type"] == "snp");
    CHECK(j["product"] == "Milan");
    CHECK(j["vmpl"] == 0);
    CHECK(j["chip_id"] == hex_encode(chip));
    CHECK(j["reported_tcb"]["snp"] == 8);
    CHECK(j["reported_tcb"]["ucode"] == 115);
    CHECK(j["vek_kind"] == "VCEK");
    CHECK(j["report"] == base64_encode(ByteView(ekcert).first(kReportSize)));
  }
  SECTION("wrong EK") {
    snptest::ReportSpec s;
    s.report_data = Bytes(64, 0x42);
    CHECK(check_snp_surrogate(make(s), ek, o).error == SnpError::ek_binding);
  }
  SECTION("VMPL 1") {
    snptest::ReportSpec s;
    s.vmpl = 1;
    CHECK(check_snp_surrogate(make(s), ek, o).error == SnpError::vmpl);
  }
  SECTION("debug") {
    snptest::ReportSpec s;
    s.policy = 0xB0000;
    CHECK(check_snp_surrogate(make(s), ek, o).error == SnpError::policy_debug);
  }
  SECTION("TCB below the policy minimum") {
    o.policy.minimum_tcb.ucode = 200;
    CHECK(check_snp_surrogate(make({}), ek, o).error == SnpError::tcb);
  }
  SECTION("tampered after signing") {
    Bytes e = make({});
    e[0x1A0] ^= 1;  // CHIP_ID
    auto r = check_snp_surrogate(e, ek, o);
    CHECK_FALSE(r.ok());
    CHECK(r.error == SnpError::vek_mismatch);
  }
  SECTION("malformed input is ERR_REPORT_MALFORMED, never an exception") {
    Bytes good = make({});
    CHECK(check_snp_surrogate(ByteView(good).first(500), ek, o).error == SnpError::report_malformed);
    Bytes bad_version = good;
    bad_version[0] = 7;
    CHECK(check_snp_surrogate(bad_version, ek, o).error == SnpError::report_malformed);
    Bytes reserved = good;
    reserved[0x340] = 1;
    auto r = check_snp_surrogate(ByteView(reserved).first(kReportSize), ek, o);
    CHECK(r.error == SnpError::report_malformed);
    CHECK_THAT(r.reason, Catch::Contains("reserved bytes"));
    Bytes junk = good;
    junk.push_back(0x99);  // a tail that is no longer a valid table
    junk.resize(kReportSize + 10);
    CHECK(check_snp_surrogate(junk, ek, o).error == SnpError::report_malformed);
    CHECK(check_snp_surrogate(Bytes(2000, 0xEE), ek, o).error == SnpError::report_malformed);
    CHECK_FALSE(check_snp_surrogate(Bytes{}, ek, o).parsed);
  }
}

TEST_CASE("mutated reports and HCL blobs never crash the parsers", "[snp][robustness]") {
  std::mt19937 rng(1234);
  Bytes report = snptest::read_testdata("snp/milan-virtee/report_milan.bin");
  Bytes hcl = snptest::read_testdata("snp/azure-kinvolk/hcl-report-snp.bin");
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    Bytes r = (i % 2) ? report : hcl;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) r[rng() % r.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 5 == 0) r.resize(rng() % (r.size() + 1));
    try {
      if (i % 2) {
        (void)parse_report(r);
      } else {
        auto h = azure::parse_hcl_report(r);
        (void)azure::verify_runtime_binding(h);
        try {
          (void)azure::parse_claims(h);
        } catch (const ParseError&) {
        }
      }
      (void)detect_surrogate(r);
      ++parsed;
    } catch (const ParseError&) {
      ++rejected;
    }
  }
  CHECK(parsed + rejected == 3000);
  CHECK(rejected > 0);
}
