// validate step and the policy file format (policies/snp/README.md).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/attest/parse_error.hpp"
#include "common/attest/snp/policy.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;
using nlohmann::json;

namespace {
SnpReport virtee() { return parse_report(snptest::read_testdata("snp/milan-virtee/report_milan.bin")); }
const char* kVirteeMeasurement =
    "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
}  // namespace

TEST_CASE("example policy files load - the strict one accepts the virtee report", "[snp][policy]") {
  SnpPolicy strict = load_policy_file(std::string(KL_SOURCE_DIR) + "/policies/snp/svsm-vtpm.json");
  CHECK(strict.max_vmpl == 0);
  CHECK_FALSE(strict.allow_debug);
  CHECK(strict.minimum_tcb.ucode == 115);
  CHECK(strict.measurements.size() == 1);
  CHECK(strict.allowed_products.size() == 3);
  auto v = validate_report(virtee(), strict, Product::milan);
  INFO(v.message());
  CHECK(v.ok());
  SnpPolicy lab = load_policy_file(std::string(KL_SOURCE_DIR) + "/policies/snp/permissive.json");
  CHECK(validate_report(virtee(), lab, Product::milan).ok());
  CHECK(validate_report(parse_report(snptest::read_testdata("snp/milan-gosevguest/attestation.bin")), lab).error ==
        SnpError::policy_debug);
}

TEST_CASE("policy file errors name the key", "[snp][policy]") {
  auto rejects = [](const char* text, const char* what) {
    try {
      load_policy(json::parse(text));
      FAIL("accepted " << text);
    } catch (const ParseError& e) {
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  rejects(R"({"allow_debgu": true})", "\"allow_debgu\" is not a known policy key");
  rejects(R"({"allow_debug": "yes"})", "\"allow_debug\" must be true or false");
  rejects(R"({"max_vmpl": 4})", "\"max_vmpl\" must be at most 3");
  rejects(R"({"max_vmpl": -1})", "non-negative");
  rejects(R"({"measurements": ["zz"]})", "not hex");
  rejects(R"({"measurements": ["0x0102"]})", "must be 48 bytes");
  rejects(R"({"host_data": "00"})", "list of hex strings");
  rejects(R"({"minimum_tcb": {"microcode": 1}})", "not a TCB component");
  rejects(R"({"minimum_tcb": {"ucode": 300}})", "at most 255");
  rejects(R"({"minimum_firmware": "1"})", "wrong number of components");
  rejects(R"({"minimum_firmware": "1.x"})", "not a dotted version");
  rejects(R"({"products": ["Naples"]})", "unknown product");
  rejects(R"([1,2])", "must be a JSON object");
  CHECK_THROWS_AS(load_policy_file("/nonexistent/policy.json"), ParseError);
}

TEST_CASE("allow-lists: measurement / host data / ID key", "[snp][policy]") {
  SnpReport r = virtee();
  SnpPolicy p = load_policy(json{{"measurements", {std::string("0x") + kVirteeMeasurement}}});
  CHECK(validate_report(r, p).ok());
  p = load_policy(json{{"measurements", {std::string(96, 'a')}}});
  auto v = validate_report(r, p);
  CHECK(v.error == SnpError::measurement);
  CHECK_THAT(v.reason, Catch::Contains(std::string("launch MEASUREMENT ") + kVirteeMeasurement));
  p = load_policy(json{{"host_data", {std::string(64, '0')}}});
  CHECK(validate_report(r, p).ok());  // virtee host data is zero
  p = load_policy(json{{"host_data", {std::string(64, '1')}}});
  CHECK(validate_report(r, p).error == SnpError::measurement);
  SnpReport k = parse_report(snptest::read_testdata("snp/azure-kinvolk/snp_report_extracted.bin"));
  // this Azure host ran provisional microcode (CURRENT ucode 206, COMMITTED 115)
  CHECK(validate_report(k, SnpPolicy{}).error == SnpError::tcb);
  p = load_policy(json{{"id_key_digests", {hex_encode(k.id_key_digest)}}, {"allow_provisional_firmware", true}});
  INFO(validate_report(k, p).message());
  CHECK(validate_report(k, p).ok());
  CHECK(validate_report(r, p).error == SnpError::measurement);
  p = load_policy(json{{"author_key_digests", {std::string(96, 'f')}}});
  CHECK(validate_report(r, p).error == SnpError::measurement);
}

TEST_CASE("guest policy and platform rules", "[snp][policy]") {
  SnpReport r = virtee();
  SnpPolicy p;
  p.allow_smt = false;
  auto v = validate_report(r, p);
  CHECK(v.error == SnpError::policy);
  CHECK_THAT(v.reason, Catch::Contains("SMT"));
  p = {};
  p.require_single_socket = true;
  CHECK(validate_report(r, p).error == SnpError::policy);
  p = {};
  p.minimum_abi = std::make_pair(std::uint8_t{1}, std::uint8_t{0});
  CHECK(validate_report(r, p).error == SnpError::policy);
  p = {};
  p.allowed_products = {Product::genoa};
  CHECK(validate_report(r, p, Product::milan).error == SnpError::policy);
  SnpReport ma = r;
  ma.policy |= 1u << 18;
  CHECK(validate_report(ma, SnpPolicy{}).error == SnpError::policy);
  SnpReport bound = r;
  bound.report_id_ma.fill(0x11);
  CHECK(validate_report(bound, SnpPolicy{}).error == SnpError::policy);
  SnpPolicy allow;
  allow.allow_migration_agent = true;
  CHECK(validate_report(bound, allow).ok());
}

TEST_CASE("TCB rules: reported vs current / provisional firmware / firmware and SVN minimums", "[snp][policy]") {
  SnpReport r = virtee();
  SnpPolicy p;
  SnpReport above = r;
  above.reported_tcb = encode_tcb(TcbParts{3, 0, 9, 115}, Product::milan);
  auto v = validate_report(above, p);
  CHECK(v.error == SnpError::tcb);
  CHECK_THAT(v.reason, Catch::Contains("exceeds CURRENT TCB"));
  p.minimum_firmware = FirmwareVersion{1, 53, 0};
  CHECK(validate_report(r, p).error == SnpError::tcb);
  p.minimum_firmware = FirmwareVersion{1, 52, 4};
  CHECK(validate_report(r, p).ok());
  p.minimum_guest_svn = 1;
  CHECK(validate_report(r, p).error == SnpError::tcb);
  p = {};
  p.minimum_tcb.snp = 8;
  p.minimum_tcb_applies_to_current = true;
  SnpReport low_current = r;
  low_current.current_tcb = encode_tcb(TcbParts{3, 0, 7, 115}, Product::milan);
  low_current.committed_tcb = low_current.current_tcb;
  low_current.reported_tcb = low_current.current_tcb;
  CHECK(validate_report(low_current, p).error == SnpError::tcb);
}
