// parse step: real vectors decode to the fields the MANIFEST lists; malformed input is a ParseError with a clear text.
#include <catch2/catch.hpp>

#include "common/attest/parse_error.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/attest/snp/report.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;
using snptest::read_testdata;

TEST_CASE("Milan virtee report fields", "[snp][parse]") {
  Bytes raw = read_testdata("snp/milan-virtee/report_milan.bin");
  SnpReport r = parse_report(raw);
  CHECK(r.version == 2);
  CHECK(r.guest_svn == 0);
  CHECK(r.policy == 0x30000);
  CHECK(r.policy_smt_allowed());
  CHECK_FALSE(r.policy_debug());
  CHECK(r.vmpl == 0);
  CHECK(r.signature_algo == 1);
  CHECK(r.signer_info == 0);
  CHECK(r.signing_key() == SigningKey::vcek);
  CHECK(r.platform_info == 1);
  CHECK(r.current_tcb == 0x7308000000000003ull);
  CHECK(r.reported_tcb == 0x7308000000000003ull);
  TcbParts t = decode_tcb(r.reported_tcb, Product::milan);
  CHECK(t.bl == 3);
  CHECK(t.tee == 0);
  CHECK(t.snp == 8);
  CHECK(t.ucode == 115);
  CHECK(int(r.current_major) == 1);
  CHECK(int(r.current_minor) == 52);
  CHECK(int(r.current_build) == 4);
  CHECK(hex_encode(r.report_data) ==
        "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd");
  CHECK(hex_encode(r.measurement) ==
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f");
  CHECK(hex_encode(ByteView(r.chip_id).first(8)) == "d49554ec717f4e5b");
  CHECK_FALSE(r.has_cpuid);
  CHECK(r.product == Product::unknown);  // v2 Milan/Genoa cannot be told apart from the report alone
  CHECK(r.no_migration_agent());
}

TEST_CASE("go-sev-guest report has the DEBUG policy bit", "[snp][parse]") {
  SnpReport r = parse_report(read_testdata("snp/milan-gosevguest/attestation.bin"));
  CHECK(r.policy == 0xB0000);
  CHECK(r.policy_debug());
  TcbParts t = decode_tcb(r.reported_tcb, Product::milan);
  CHECK((t == TcbParts{2, 0, 5, 68}));
  CHECK(hex_encode(ByteView(r.report_data).first(5)) == "0102030405");
}

TEST_CASE("AWS v3 VLEK report: CPUID product and VLEK signer", "[snp][parse]") {
  SnpReport r = parse_report(read_testdata("snp/aws-vlek-milan-v3/report.bin"));
  CHECK(r.version == 3);
  CHECK(r.has_cpuid);
  CHECK(int(r.cpuid_fam_id) == 0x19);
  CHECK(int(r.cpuid_mod_id) == 0x01);
  CHECK(int(r.cpuid_step) == 0x01);
  CHECK(r.product == Product::milan);
  CHECK(r.signer_info == 4);
  CHECK(r.signing_key() == SigningKey::vlek);
  CHECK(r.chip_id_zero());
  CHECK(r.platform_info == 0x27);
  CHECK(r.current_tcb == 0xdc18000000000004ull);
  CHECK(r.committed_tcb == 0xdb18000000000004ull);
  CHECK(r.reported_tcb == 0xd918000000000004ull);
  TcbParts t = decode_tcb(r.reported_tcb, r.product);
  CHECK((t == TcbParts{4, 0, 24, 217}));
}

TEST_CASE("product determination rules", "[snp][parse]") {
  SnpReport r;
  r.has_cpuid = true;
  r.cpuid_fam_id = 0x19;
  r.cpuid_mod_id = 0x11;
  CHECK(determine_product(r) == Product::genoa);
  r.cpuid_mod_id = 0xA0;
  CHECK(determine_product(r) == Product::genoa);
  r.cpuid_mod_id = 0x01;
  CHECK(determine_product(r) == Product::milan);
  r.cpuid_fam_id = 0x1A;
  r.cpuid_mod_id = 0x02;
  CHECK(determine_product(r) == Product::turin);
  r.cpuid_fam_id = 0x17;
  CHECK(determine_product(r) == Product::unknown);
  SnpReport v2;
  v2.chip_id[0] = 0x1e;
  CHECK(determine_product(v2) == Product::turin);  // only the first 8 bytes used
  v2.chip_id[40] = 1;
  CHECK(determine_product(v2) == Product::unknown);
}

TEST_CASE("TCB layouts: Milan vs Turin / component-wise comparison", "[snp][tcb]") {
  TcbParts m = decode_tcb(0x7308000000000003ull, Product::milan);
  CHECK((m == TcbParts{3, 0, 8, 115}));
  TcbParts tu = decode_tcb(0x0900000000000001ull | (0x02ull << 8) | (0x03ull << 16) | (0x04ull << 24), Product::turin);
  CHECK(int(tu.fmc) == 1);
  CHECK(int(tu.bl) == 2);
  CHECK(int(tu.tee) == 3);
  CHECK(int(tu.snp) == 4);
  CHECK(int(tu.ucode) == 9);
  CHECK(encode_tcb(tu, Product::turin) == (0x0900000004030201ull));
  CHECK(tcb_key(m) == "bl03-tee00-snp08-uc115");
  CHECK(tcb_key(tu) == "bl02-tee03-snp04-uc09-fmc01");
  // u64 order would say a > b; component-wise a is below b in bl.
  TcbParts a{1, 0, 9, 200}, b{2, 0, 8, 100};
  CHECK_FALSE(tcb_at_least(a, b));
  CHECK(tcb_at_least(b, TcbParts{2, 0, 8, 100}));
}

TEST_CASE("versions 3 and 5 of a synthetic report parse - v5 mitigation vectors", "[snp][parse]") {
  snptest::ReportSpec s;
  s.version = 5;
  s.cpuid_fam = 0x1A;
  s.cpuid_mod = 0x02;
  Bytes raw = snptest::build_report(s);
  raw[0x1F8] = 0x05;
  raw[0x200] = 0x07;
  SnpReport r = parse_report(raw);
  CHECK(r.version == 5);
  CHECK(r.product == Product::turin);
  CHECK(r.launch_mit_vector == 5);
  CHECK(r.current_mit_vector == 7);
  s.version = 3;
  s.cpuid_fam = 0x19;
  s.cpuid_mod = 0x11;
  CHECK(parse_report(snptest::build_report(s)).product == Product::genoa);
  s.version = 4;
  CHECK(parse_report(snptest::build_report(s)).version == 4);
}

TEST_CASE("malformed reports are rejected with a clear error", "[snp][parse]") {
  Bytes good = read_testdata("snp/milan-virtee/report_milan.bin");
  auto rejects = [](const Bytes& b, const std::string& text) {
    try {
      parse_report(b);
      FAIL("accepted a malformed report, expected: " << text);
    } catch (const ParseError& e) {
      CHECK_THAT(e.what(), Catch::Contains(text));
    }
  };
  SECTION("short") { rejects(Bytes(good.begin(), good.begin() + 1000), "1000 bytes, expected 1184"); }
  SECTION("empty") { rejects(Bytes{}, "0 bytes, expected 1184"); }
  SECTION("long") {
    Bytes b = good;
    b.push_back(0);
    rejects(b, "1185 bytes");
  }
  SECTION("wrong version") {
    for (std::uint8_t v : {0, 1, 6, 0xFF}) {
      Bytes b = good;
      b[0] = v;
      rejects(b, "unsupported SNP report version " + std::to_string(v));
    }
  }
  SECTION("garbage") {
    Bytes b(kReportSize);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 131 + 17);
    b[0] = 2;
    b[1] = b[2] = b[3] = 0;
    CHECK_THROWS_AS(parse_report(b), ParseError);
    rejects(Bytes(kReportSize, 0xFF), "version");
  }
  SECTION("signature algorithm") {
    Bytes b = good;
    b[0x34] = 2;
    rejects(b, "SIGNATURE_ALGO is 2");
  }
  SECTION("policy reserved bit 17 clear") {
    Bytes b = good;
    b[0x0A] &= ~0x02;
    rejects(b, "bit 17");
  }
  SECTION("policy MBZ bits") {
    Bytes b = good;
    b[0x0F] = 0x80;
    rejects(b, "63:26");
  }
  SECTION("signer info reserved SIGNING_KEY") {
    Bytes b = good;
    b[0x48] = 2 << 2;
    rejects(b, "SIGNING_KEY 2 is reserved");
  }
  SECTION("reserved range not zero") {
    Bytes b = good;
    b[0x400] = 1;
    rejects(b, "reserved bytes 0x330..0x4A0");
  }
  SECTION("VMPL out of range") {
    Bytes b = good;
    b[0x30] = 4;
    rejects(b, "VMPL 4");
  }
}

TEST_CASE("detecting surrogates in ekcert bytes", "[snp][detect]") {
  Bytes report = read_testdata("snp/milan-virtee/report_milan.bin");
  CHECK(classify_ekcert(report).kind == EkcertKind::snp_report);
  CHECK(classify_ekcert(report).report.size() == kReportSize);
  Bytes v3 = read_testdata("snp/aws-vlek-milan-v3/report.bin");
  CHECK(detect_surrogate(v3).kind == EkcertKind::snp_report);
  Bytes hcl = read_testdata("snp/azure-kinvolk/hcl-report-snp.bin");
  CHECK(classify_ekcert(hcl).kind == EkcertKind::azure_hcl);
  Bytes vcek = read_testdata("snp/milan-virtee/vcek_milan.der");
  CHECK(classify_ekcert(vcek).kind == EkcertKind::x509);
  CHECK(classify_ekcert(as_bytes("hello")).kind == EkcertKind::unrecognized);
  Bytes wrong_version = report;
  wrong_version[0] = 9;
  CHECK(detect_surrogate(wrong_version).kind == EkcertKind::unrecognized);
  Bytes junk_tail = report;
  junk_tail.insert(junk_tail.end(), 10, 0xAB);
  CHECK(detect_surrogate(junk_tail).kind == EkcertKind::unrecognized);
  Bytes padded = report;
  padded.resize(2048, 0);  // read from a larger NV index
  CHECK(detect_surrogate(padded).kind == EkcertKind::snp_report);
  CHECK(detect_surrogate(padded).cert_table.empty());
  Bytes short_report(report.begin(), report.begin() + 600);
  CHECK(detect_surrogate(short_report).kind == EkcertKind::unrecognized);
}
