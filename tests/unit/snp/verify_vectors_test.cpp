// verify step on the real AMD vectors of testdata/snp (MANIFEST sections 2-5), against the real AMD ARKs pinned by
// fingerprint (amd_ark_pins()).
#include <catch2/catch.hpp>

#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/ek_binding.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/verify.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;
using snptest::read_testdata;

namespace {

// A store with the real AMD Milan and Turin roots (ARK, ASK, ASVK) as the registrar would ship them.
struct AmdStore {
  snptest::TempDir dir;
  std::unique_ptr<StoreCertSource> source;
  AmdStore() {
    for (auto [prod, file] : {std::pair{"Milan", "milan"}, std::pair{"Turin", "turin"}, std::pair{"Genoa", "genoa"}}) {
      std::string base = std::string("snp/amd-roots/") + file;
      snptest::write_file(dir.path / prod / "ark.pem", read_testdata(base + "_vcek_ark.pem"));
      snptest::write_file(dir.path / prod / "ask.pem", read_testdata(base + "_vcek_ask.pem"));
      snptest::write_file(dir.path / prod / "asvk.pem", read_testdata(base + "_vlek_ask.pem"));
    }
    StoreCertSource::Options o;
    o.store_dir = dir.path;
    source = std::make_unique<StoreCertSource>(o);
  }
};

std::chrono::system_clock::time_point at(std::time_t t) { return std::chrono::system_clock::from_time_t(t); }
constexpr std::time_t k2025_06_01 = 1748736000;

}  // namespace

TEST_CASE("real AMD ARKs load and match the pinned fingerprints", "[snp][verify][vectors]") {
  AmdStore s;
  CHECK(s.source->warnings().empty());
  REQUIRE(s.source->ark(Product::milan));
  REQUIRE(s.source->ark(Product::genoa));
  REQUIRE(s.source->ark(Product::turin));
  CHECK(sha256_fingerprint(s.source->ark(Product::milan)).substr(0, 16) == "69d063b45344d26a");
}

TEST_CASE("genuine Milan report verifies with its VCEK (MANIFEST 2)", "[snp][verify][vectors]") {
  AmdStore s;
  Bytes raw = read_testdata("snp/milan-virtee/report_milan.bin");
  SnpReport r = parse_report(raw);
  VerifyOptions o;
  o.certs = s.source.get();
  o.vek = read_testdata("snp/milan-virtee/vcek_milan.der");
  VerifyResult v = verify_report(r, raw, o);
  INFO(v.message());
  REQUIRE(v.ok());
  CHECK(v.product == Product::milan);  // from the VCEK's productName "Milan-B0"
  CHECK(v.vek_kind == VekKind::vcek);
  CHECK(v.vek_extensions.product_name == std::string("Milan-B0"));
  CHECK(v.vek_extensions.ucode_spl == 115u);
  CHECK(v.vek_sha256.size() == 64);

  SECTION("policy: passes the default policy") {
    SnpPolicy p;
    auto val = validate_report(r, p, v.product);
    INFO(val.message());
    CHECK(val.ok());
  }
  SECTION("no EK binds this report") {
    auto b = check_ek_binding(r, snptest::sample_ek_tpm());
    CHECK(b.error == SnpError::ek_binding);
    CHECK_THAT(b.reason, Catch::Contains("does not bind this EK"));
  }
  SECTION("VCEK found in the offline store instead of being supplied") {
    LeafQuery q;
    q.product = Product::milan;
    q.hw_id.assign(r.chip_id.begin(), r.chip_id.end());
    q.tcb = decode_tcb(r.reported_tcb, Product::milan);
    snptest::write_file(s.dir.path / vcek_store_path(q), read_testdata("snp/milan-virtee/vcek_milan.der"));
    CHECK(vcek_store_path(q).string().find("vcek/Milan/d49554ec717f4e5b") == 0);
    VerifyOptions o2;
    o2.certs = s.source.get();
    VerifyResult v2 = verify_report(r, raw, o2);  // v2: tries Milan then Genoa
    INFO(v2.message());
    CHECK(v2.ok());
    CHECK(v2.product == Product::milan);
  }
  SECTION("offline store miss -> ERR_VEK_UNAVAILABLE") {
    VerifyOptions o2;
    o2.certs = s.source.get();
    VerifyResult v2 = verify_report(r, raw, o2);
    CHECK(v2.error == SnpError::vek_unavailable);
    CHECK_THAT(v2.reason, Catch::Contains("not available"));
  }
  SECTION("stated product Genoa: chain does not verify") {
    o.product = Product::genoa;
    VerifyResult v2 = verify_report(r, raw, o);
    CHECK_FALSE(v2.ok());
    CHECK(v2.error == SnpError::chain_invalid);
  }
}

TEST_CASE("tampered Milan report fails the signature (MANIFEST 2)", "[snp][verify][vectors]") {
  AmdStore s;
  Bytes raw = read_testdata("snp/milan-virtee/report_milan_tampered_byte21.bin");
  SnpReport r = parse_report(raw);
  VerifyOptions o;
  o.certs = s.source.get();
  o.vek = read_testdata("snp/milan-virtee/vcek_milan.der");
  VerifyResult v = verify_report(r, raw, o);
  CHECK(v.error == SnpError::report_signature);
  CHECK_THAT(v.message(), Catch::StartsWith("ERR_REPORT_SIGNATURE"));
}

TEST_CASE("debug-policy report: signature valid / policy rejects (MANIFEST 3)", "[snp][verify][vectors]") {
  AmdStore s;
  Bytes raw = read_testdata("snp/milan-gosevguest/attestation.bin");
  SnpReport r = parse_report(raw);
  VerifyOptions o;
  o.certs = s.source.get();
  o.vek = read_testdata("snp/milan-gosevguest/vcek.der");
  VerifyResult v = verify_report(r, raw, o);
  INFO(v.message());
  REQUIRE(v.ok());
  SnpPolicy p;
  auto val = validate_report(r, p, v.product);
  CHECK(val.error == SnpError::policy_debug);
  p.allow_debug = true;
  CHECK(validate_report(r, p, v.product).ok());
}

TEST_CASE("a VCEK of another chip does not verify the report (MANIFEST 3 cross-check)", "[snp][verify][vectors]") {
  AmdStore s;
  Bytes raw = read_testdata("snp/milan-virtee/report_milan.bin");
  SnpReport r = parse_report(raw);
  VerifyOptions o;
  o.certs = s.source.get();
  o.vek = read_testdata("snp/milan-gosevguest/vcek.der");
  VerifyResult v = verify_report(r, raw, o);
  CHECK(v.error == SnpError::vek_mismatch);
  // and the raw signature check alone fails too
  auto leaf = load_certificate(read_testdata("snp/milan-gosevguest/vcek.der"));
  CHECK(verify_report_signature(r, raw, X509_get0_pubkey(leaf.get())).error == SnpError::report_signature);
}

TEST_CASE("AWS v3 VLEK report: valid with a time override / expired without (MANIFEST 5)", "[snp][verify][vectors]") {
  AmdStore s;
  Bytes raw = read_testdata("snp/aws-vlek-milan-v3/report.bin");
  SnpReport r = parse_report(raw);
  VerifyOptions o;
  o.certs = s.source.get();
  o.vek = read_testdata("snp/aws-vlek-milan-v3/vlek.pem");
  o.time = at(k2025_06_01);
  VerifyResult v = verify_report(r, raw, o);
  INFO(v.message());
  REQUIRE(v.ok());
  CHECK(v.vek_kind == VekKind::vlek);
  CHECK(v.vek_extensions.ucode_spl == 217u);  // DER INTEGER 02 02 00 D9
  CHECK(v.vek_extensions.csp_id == std::string("CN=cc-eu-west-1.amazonaws.com"));
  CHECK_FALSE(v.vek_extensions.hw_id);

  SECTION("at the real current time the VLEK is expired") {
    o.time.reset();
    VerifyResult e = verify_report(r, raw, o);
    CHECK(e.error == SnpError::cert_expired);
    CHECK_THAT(e.reason, Catch::Contains("VCEK/VLEK expired on 2025-12-10"));
  }
  SECTION("provisional firmware: committed != current TCB") {
    SnpPolicy p;
    auto val = validate_report(r, p, v.product);
    CHECK(val.error == SnpError::tcb);
    CHECK_THAT(val.reason, Catch::Contains("provisional firmware"));
    p.allow_provisional_firmware = true;
    CHECK(validate_report(r, p, v.product).ok());
  }
  SECTION("a VLEK-signed report with a VCEK is a mismatch") {
    o.vek = read_testdata("snp/milan-virtee/vcek_milan.der");
    VerifyResult m = verify_report(r, raw, o);
    CHECK(m.error == SnpError::vek_mismatch);
  }
}

TEST_CASE("Turin VCEK: chain and extension parsing (MANIFEST 4)", "[snp][verify][vectors]") {
  AmdStore s;
  auto leaf = load_certificate(read_testdata("snp/turin-virtee/vcek_turin.der"));
  REQUIRE(leaf);
  auto ask = s.source->intermediate(Product::turin, VekKind::vcek);
  REQUIRE(ask);
  auto chain = verify_amd_chain(leaf.get(), ask.get(), s.source->ark(Product::turin), Product::turin, VekKind::vcek,
                                std::chrono::system_clock::now());
  INFO(chain.message());
  CHECK(chain.ok());
  VekExtensions e = parse_vek_extensions(leaf.get());
  CHECK(e.struct_version == 1);
  CHECK(e.product_name == std::string("Turin"));
  CHECK(e.product() == Product::turin);
  CHECK(e.fmc_spl == 0u);
  CHECK(e.bl_spl == 0u);
  CHECK(e.ucode_spl == 9u);
  CHECK_FALSE(e.spl4);
  REQUIRE(e.hw_id);
  CHECK(hex_encode(*e.hw_id) == "1e550a8ee5cf9f4d");
  CHECK(e.kind() == VekKind::vcek);
  // The Turin VCEK does not chain to the Milan ARK.
  auto milan_ask = s.source->intermediate(Product::milan, VekKind::vcek);
  CHECK(verify_amd_chain(leaf.get(), milan_ask.get(), s.source->ark(Product::milan), Product::milan, VekKind::vcek,
                         std::nullopt)
            .error == SnpError::chain_invalid);

  SECTION("a Turin report matching this VCEK's extensions passes the extension check") {
    snptest::ReportSpec rs;
    rs.version = 3;
    rs.cpuid_fam = 0x1A;
    rs.cpuid_mod = 0x02;
    Bytes raw = snptest::build_report(rs);
    std::uint64_t tcb = encode_tcb(TcbParts{0, 0, 0, 9, 0, true}, Product::turin);
    for (int i = 0; i < 8; ++i) raw[0x180 + i] = static_cast<std::uint8_t>(tcb >> (8 * i));
    Bytes hw = *e.hw_id;
    std::copy(hw.begin(), hw.end(), raw.begin() + 0x1A0);
    SnpReport r = parse_report(raw);
    CHECK(r.product == Product::turin);
    CHECK(match_vek_to_report(e, r, Product::turin).ok());
    raw[0x1A0] ^= 1;
    CHECK(match_vek_to_report(e, parse_report(raw), Product::turin).error == SnpError::vek_mismatch);
  }
}

TEST_CASE("an ARK that is not pinned is not trusted", "[snp][verify]") {
  snptest::TempDir dir;
  snptest::write_file(dir.path / "Milan" / "ark.pem", read_testdata("snp/amd-roots/milan_vcek_ark.pem"));
  StoreCertSource::Options opt;
  opt.store_dir = dir.path;
  opt.ark_pins = {{Product::milan, {std::string(64, '0')}}};
  StoreCertSource src(opt);
  CHECK(src.ark(Product::milan) == nullptr);
  REQUIRE(src.warnings().size() == 1);
  CHECK_THAT(src.warnings()[0], Catch::Contains("not pinned"));
  Bytes raw = read_testdata("snp/milan-virtee/report_milan.bin");
  VerifyOptions o;
  o.certs = &src;
  o.vek = read_testdata("snp/milan-virtee/vcek_milan.der");
  auto v = verify_report(parse_report(raw), raw, o);
  CHECK(v.error == SnpError::vek_unavailable);
  CHECK_THAT(v.reason, Catch::Contains("no pinned ARK for Milan"));
}
