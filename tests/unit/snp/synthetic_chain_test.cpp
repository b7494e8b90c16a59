// verify / validate / EK binding with a test AMD chain generated here (RSA-4096 PSS ARK -> ASK -> P-384 VCEK with
// the AMD extensions) and reports signed by it that bind the sample ek_tpm, as an SVSM-vTPM would produce them.
#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/attest/snp/ek_binding.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/verify.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;

namespace {

struct Surrogate {
  snptest::TempDir dir;
  std::unique_ptr<StoreCertSource> source;
  snptest::TestLeaf vcek;
  Bytes ek_tpm = snptest::sample_ek_tpm();
  Bytes chip = snptest::chip_id_of(1);

  Surrogate() {
    snptest::write_store(snptest::test_chain(), dir.path);
    source = std::make_unique<StoreCertSource>(snptest::test_store_options(dir.path));
    snptest::LeafSpec ls;
    ls.hw_id = chip;
    vcek = snptest::make_leaf(snptest::test_chain(), ls);
  }
  snptest::ReportSpec spec() const {
    snptest::ReportSpec s;
    s.chip_id = chip;
    s.report_data = expected_report_data(ek_tpm);
    return s;
  }
  Bytes signed_report(const snptest::ReportSpec& s, EVP_PKEY* key = nullptr) const {
    Bytes raw = snptest::build_report(s);
    snptest::sign_report(raw, key ? key : vcek.key.get());
    return raw;
  }
  VerifyOptions options() const {
    VerifyOptions o;
    o.certs = source.get();
    o.vek = vcek.der;
    o.product = Product::milan;
    return o;
  }
  VerifyResult verify(const Bytes& raw, const VerifyOptions& o) const { return verify_report(parse_report(raw), raw, o); }
  VerifyResult verify(const Bytes& raw) const { return verify(raw, options()); }
};

}  // namespace

TEST_CASE("synthetic surrogate: positive path (verify / EK binding / validate)", "[snp][synthetic]") {
  Surrogate s;
  REQUIRE(s.source->ark(Product::milan));
  Bytes raw = s.signed_report(s.spec());
  SnpReport r = parse_report(raw);
  VerifyResult v = s.verify(raw);
  INFO(v.message());
  REQUIRE(v.ok());
  CHECK(v.vek_kind == VekKind::vcek);
  CHECK(check_ek_binding(r, s.ek_tpm).ok());
  CHECK(hex_encode(r.report_data) == hex_encode(crypto::digest(crypto::HashAlg::sha512, s.ek_tpm)));
  CHECK(s.ek_tpm.size() == 316);  // RSA-2048 EK template with size prefix, as the PoC sends it
  SnpPolicy p;
  p.minimum_tcb.bl = 3;
  p.minimum_tcb.snp = 8;
  p.minimum_tcb.ucode = 115;
  CHECK(validate_report(r, p, v.product).ok());

  SECTION("the VCEK can also come from the offline store (v2 report, product tried)") {
    LeafQuery q{Product::milan, VekKind::vcek, s.chip, TcbParts{3, 0, 8, 115}};
    snptest::write_file(s.dir.path / vcek_store_path(q), s.vcek.der);
    VerifyOptions o;
    o.certs = s.source.get();
    auto v2 = s.verify(raw, o);
    INFO(v2.message());
    CHECK(v2.ok());
  }
  SECTION("the report and chain can come in an extended-report certificate table") {
    CertTable t;
    t.vcek = s.vcek.der;
    t.ask = snptest::to_der(snptest::test_chain().ask.get());
    Bytes ext = raw;
    Bytes table = build_cert_table(t);
    ext.insert(ext.end(), table.begin(), table.end());
    Detection d = detect_surrogate(ext);
    REQUIRE(d.kind == EkcertKind::snp_report);
    CertTable parsed = parse_cert_table(d.cert_table);
    REQUIRE(parsed.vcek);
    REQUIRE(parsed.ask);
    VerifyOptions o;
    o.certs = s.source.get();
    o.vek = parsed.vcek;
    o.intermediate = parsed.ask;
    Bytes rep(d.report.begin(), d.report.end());
    auto v3 = s.verify(rep, o);
    INFO(v3.message());
    CHECK(v3.ok());
  }
}

TEST_CASE("synthetic surrogate: VMPL 1 is rejected by validate", "[snp][synthetic]") {
  Surrogate s;
  auto spec = s.spec();
  spec.vmpl = 1;
  Bytes raw = s.signed_report(spec);
  REQUIRE(s.verify(raw).ok());  // cryptographically fine
  auto v = validate_report(parse_report(raw), SnpPolicy{});
  CHECK(v.error == SnpError::vmpl);
  CHECK(v.message() == "ERR_VMPL: report VMPL is 1, must be <= 0 (the vTPM runs at VMPL 0)");
}

TEST_CASE("synthetic surrogate: wrong EK digest", "[snp][synthetic]") {
  Surrogate s;
  auto spec = s.spec();
  Bytes other = s.ek_tpm;
  other.back() ^= 1;  // a different EK (modulus differs in one bit)
  spec.report_data = expected_report_data(other);
  Bytes raw = s.signed_report(spec);
  REQUIRE(s.verify(raw).ok());
  SnpReport r = parse_report(raw);
  CHECK(check_ek_binding(r, s.ek_tpm).error == SnpError::ek_binding);
  CHECK(check_ek_binding(r, other).ok());

  SECTION("digest of the bare TPMT_PUBLIC only with the flag") {
    auto sp = s.spec();
    sp.report_data = crypto::digest(crypto::HashAlg::sha512, ByteView(s.ek_tpm).subspan(2));
    SnpReport rb = parse_report(s.signed_report(sp));
    CHECK(check_ek_binding(rb, s.ek_tpm).error == SnpError::ek_binding);
    CHECK(check_ek_binding(rb, s.ek_tpm, {.allow_bare_tpmt = true}).ok());
  }
  SECTION("ek_tpm that is not a TPM2B_PUBLIC") {
    CHECK_THAT(check_ek_binding(r, as_bytes("garbage")).reason, Catch::Contains("not a well-formed TPM2B_PUBLIC"));
    CHECK(check_ek_binding(r, Bytes{}).error == SnpError::ek_binding);
  }
}

TEST_CASE("synthetic surrogate: report signed by another chip", "[snp][synthetic]") {
  Surrogate s;
  snptest::LeafSpec ls;
  ls.hw_id = snptest::chip_id_of(2);
  auto other = snptest::make_leaf(snptest::test_chain(), ls);
  Bytes raw = s.signed_report(s.spec(), other.key.get());  // claims chip 1, signed by chip 2

  SECTION("with this chip's VCEK: signature fails") {
    auto v = s.verify(raw);
    CHECK(v.error == SnpError::report_signature);
  }
  SECTION("with the other chip's VCEK: hwID mismatch") {
    auto o = s.options();
    o.vek = other.der;
    auto v = s.verify(raw, o);
    CHECK(v.error == SnpError::vek_mismatch);
    CHECK_THAT(v.reason, Catch::Contains("hwID"));
  }
  SECTION("a VCEK from a chain that is not AMD's (unpinned ARK)") {
    snptest::LeafSpec rl;
    rl.hw_id = s.chip;
    auto rogue = snptest::make_leaf(snptest::rogue_chain(), rl);
    Bytes r2 = s.signed_report(s.spec(), rogue.key.get());
    auto o = s.options();
    o.vek = rogue.der;
    auto v = s.verify(r2, o);
    CHECK(v.error == SnpError::chain_invalid);
    o.intermediate = snptest::to_der(snptest::rogue_chain().ask.get());  // a rogue ASK does not help
    CHECK(s.verify(r2, o).error == SnpError::chain_invalid);
  }
}

TEST_CASE("synthetic surrogate: expired and not-yet-valid VCEK", "[snp][synthetic]") {
  Surrogate s;
  snptest::LeafSpec ls;
  ls.hw_id = s.chip;
  ls.not_before_days = -400;
  ls.not_after_days = -1;
  auto expired = snptest::make_leaf(snptest::test_chain(), ls);
  Bytes raw = s.signed_report(s.spec(), expired.key.get());
  auto o = s.options();
  o.vek = expired.der;
  auto v = s.verify(raw, o);
  CHECK(v.error == SnpError::cert_expired);
  CHECK_THAT(v.reason, Catch::Contains("VCEK/VLEK expired on"));
  o.time = std::chrono::system_clock::now() - std::chrono::hours(24 * 30);
  CHECK(s.verify(raw, o).ok());
  o.time = std::chrono::system_clock::now() - std::chrono::hours(24 * 500);
  CHECK(s.verify(raw, o).error == SnpError::cert_expired);
  o.check_time = false;
  CHECK(s.verify(raw, o).ok());
}

TEST_CASE("synthetic surrogate: CRL checking", "[snp][synthetic][crl]") {
  Surrogate s;
  Bytes raw = s.signed_report(s.spec());
  auto o = s.options();
  o.check_crl = true;
  SECTION("no CRL available: fail closed, or open when configured") {
    auto v = s.verify(raw, o);
    CHECK(v.error == SnpError::crl_unavailable);
    o.crl_fail_open = true;
    CHECK(s.verify(raw, o).ok());
  }
  SECTION("ASK revoked") {
    snptest::write_file(s.dir.path / "Milan" / "crl.der", snptest::make_ark_crl(snptest::test_chain(), {7, 2}));
    auto v = s.verify(raw, o);
    CHECK(v.error == SnpError::revoked);
    CHECK_THAT(v.reason, Catch::Contains("ASK/ASVK serial is listed"));
  }
  SECTION("CRL without the ASK") {
    snptest::write_file(s.dir.path / "Milan" / "crl.der", snptest::make_ark_crl(snptest::test_chain(), {7}));
    auto v = s.verify(raw, o);
    INFO(v.message());
    CHECK(v.ok());
  }
  SECTION("CRL signed by another ARK") {
    snptest::write_file(s.dir.path / "Milan" / "crl.der", snptest::make_ark_crl(snptest::rogue_chain(), {2}));
    CHECK(s.verify(raw, o).error == SnpError::crl_unavailable);
  }
  SECTION("stale CRL") {
    snptest::write_file(s.dir.path / "Milan" / "crl.der", snptest::make_ark_crl(snptest::test_chain(), {}, -1));
    CHECK(s.verify(raw, o).error == SnpError::crl_unavailable);
  }
  SECTION("CRL garbage") {
    snptest::write_file(s.dir.path / "Milan" / "crl.der", as_bytes("not a crl"));
    CHECK(s.verify(raw, o).error == SnpError::crl_unavailable);
  }
}

TEST_CASE("synthetic surrogate: TCB below the minimum and TCB vs certificate", "[snp][synthetic]") {
  Surrogate s;
  Bytes raw = s.signed_report(s.spec());
  SnpReport r = parse_report(raw);
  REQUIRE(s.verify(raw).ok());
  SnpPolicy p;
  p.minimum_tcb.snp = 9;
  auto v = validate_report(r, p);
  CHECK(v.error == SnpError::tcb);
  CHECK_THAT(v.reason, Catch::Contains("REPORTED TCB (bl=3 tee=0 snp=8 ucode=115) is below the minimum"));
  p.minimum_tcb = {};
  p.minimum_tcb.ucode = 116;
  CHECK(validate_report(r, p).error == SnpError::tcb);
  p.minimum_tcb = {};
  p.minimum_tcb.bl = 2;
  CHECK(validate_report(r, p).ok());

  SECTION("certificate SPL differs from REPORTED_TCB") {
    snptest::LeafSpec ls;
    ls.hw_id = s.chip;
    ls.tcb = TcbParts{3, 0, 7, 115};
    auto older = snptest::make_leaf(snptest::test_chain(), ls);
    auto o = s.options();
    o.vek = older.der;
    Bytes r2 = s.signed_report(s.spec(), older.key.get());
    auto m = s.verify(r2, o);
    CHECK(m.error == SnpError::vek_mismatch);
    CHECK_THAT(m.reason, Catch::Contains("snpSPL 7 != REPORTED_TCB 8"));
  }
}

TEST_CASE("synthetic surrogate: VLEK-signed v3 report", "[snp][synthetic]") {
  Surrogate s;
  snptest::LeafSpec ls;
  ls.vlek = true;
  ls.product_name = "Milan";
  auto vlek = snptest::make_leaf(snptest::test_chain(), ls);
  auto spec = s.spec();
  spec.version = 3;
  spec.signer_info = 1 << 2;
  spec.chip_id = Bytes(64, 0);
  Bytes raw = s.signed_report(spec, vlek.key.get());
  VerifyOptions o;
  o.certs = s.source.get();
  SECTION("supplied") {
    o.vek = vlek.der;
    auto v = s.verify(raw, o);
    INFO(v.message());
    CHECK(v.ok());
    CHECK(v.vek_kind == VekKind::vlek);
  }
  SECTION("operator-supplied VLEK in the store") {
    snptest::write_file(s.dir.path / "vlek" / "Milan" / "csp.pem", as_bytes(snptest::to_pem(vlek.cert.get())));
    auto v = s.verify(raw, o);
    INFO(v.message());
    CHECK(v.ok());
  }
  SECTION("VLEK not available") { CHECK(s.verify(raw, o).error == SnpError::vek_unavailable); }
}

TEST_CASE("chain cache: second verification reuses the chain / time still checked", "[snp][synthetic][cache]") {
  Surrogate s;
  Bytes raw = s.signed_report(s.spec());
  ChainCache cache;
  auto o = s.options();
  o.cache = &cache;
  CHECK(s.verify(raw, o).ok());
  CHECK(cache.size() == 1);
  CHECK(s.verify(raw, o).ok());
  CHECK(cache.size() == 1);
  Bytes tampered = raw;
  tampered[0x95] ^= 1;
  CHECK(s.verify(tampered, o).error == SnpError::report_signature);
  o.time = std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 30);
  CHECK(s.verify(raw, o).error == SnpError::cert_expired);
  o.time = std::nullopt;
  o.product = Product::genoa;  // a different product is a different chain
  CHECK_FALSE(s.verify(raw, o).ok());
}

TEST_CASE("malformed reports never reach verification", "[snp][synthetic]") {
  Surrogate s;
  Bytes raw = s.signed_report(s.spec());
  CHECK_THROWS_AS(parse_report(ByteView(raw).first(1183)), ParseError);
  Bytes longer = raw;
  longer.push_back(0);
  CHECK_THROWS_AS(parse_report(longer), ParseError);
  Bytes v1 = raw;
  v1[0] = 1;
  CHECK_THROWS_WITH(parse_report(v1), Catch::Contains("unsupported SNP report version 1"));
  // verify_report refuses a short raw buffer even with a parsed struct
  auto o = s.options();
  CHECK(verify_report(parse_report(raw), ByteView(raw).first(100), o).error == SnpError::report_malformed);
}
