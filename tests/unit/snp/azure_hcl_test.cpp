// Azure HCL reports (MANIFEST sections 6 and 7): parse, runtime-data binding, embedded SNP report verification, and
// HCLEkPub / HCLAkPub against TPM2B_PUBLIC keys.
#include <catch2/catch.hpp>

#include "common/attest/azure/hcl_report.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;
using namespace kl::azure;
using snptest::read_testdata;

namespace {

struct AmdMilanStore {
  snptest::TempDir dir;
  std::unique_ptr<StoreCertSource> source;
  AmdMilanStore() {
    snptest::write_file(dir.path / "Milan" / "ark.pem", read_testdata("snp/amd-roots/milan_vcek_ark.pem"));
    snptest::write_file(dir.path / "Milan" / "ask.pem", read_testdata("snp/amd-roots/milan_vcek_ask.pem"));
    StoreCertSource::Options o;
    o.store_dir = dir.path;
    source = std::make_unique<StoreCertSource>(o);
  }
};

// TPM2B_PUBLIC of an RSA key with the given modulus (as an agent would send ek_tpm / aik_tpm).
Bytes tpm2b_for_rsa(const Bytes& n, std::uint32_t exponent) {
  TPMT_PUBLIC t{};
  t.type = TPM2_ALG_RSA;
  t.nameAlg = TPM2_ALG_SHA256;
  t.objectAttributes = 0x000300B2;
  t.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  t.parameters.rsaDetail.symmetric.keyBits.aes = 128;
  t.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  t.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  t.parameters.rsaDetail.keyBits = static_cast<TPMI_RSA_KEY_BITS>(n.size() * 8);
  t.parameters.rsaDetail.exponent = exponent;
  t.unique.rsa.size = static_cast<UINT16>(n.size());
  std::copy(n.begin(), n.end(), t.unique.rsa.buffer);
  return tpm::marshal_tpm2b_public(t);
}

}  // namespace

TEST_CASE("Constellation HCL report (reconstructed header): everything passes (MANIFEST 6)", "[azure][hcl]") {
  Bytes blob = read_testdata("snp/azure-constellation/hcl_report_reconstructed.bin");
  CHECK(classify_ekcert(blob).kind == EkcertKind::azure_hcl);
  HclReport h = parse_hcl_report(blob);
  CHECK(h.version == 1);
  CHECK(h.request_type == 2);
  CHECK(h.report_type == 2);
  CHECK(h.hash_type == 1);
  CHECK(h.claims_size == 584);
  CHECK(h.data_size == 604);
  CHECK(h.snp.guest_svn == 2);
  CHECK(h.snp.policy == 0x3001F);
  CHECK(h.snp_report_raw == read_testdata("snp/azure-constellation/snp_report.bin"));
  CHECK(h.claims == read_testdata("snp/azure-constellation/runtimedata.json"));
  CHECK(verify_runtime_binding(h).ok());

  HclClaims c = parse_claims(h);
  REQUIRE(c.ak_pub);
  CHECK(c.ak_pub->n.size() == 256);  // RSA-2048
  CHECK(hex_encode(c.ak_pub->e) == "010001");
  CHECK_FALSE(c.ek_pub);

  AmdMilanStore s;
  HclCheckOptions o;
  o.verify.certs = s.source.get();
  o.verify.vek = read_testdata("snp/azure-constellation/vcek.der");
  SECTION("full check: signature, chain, binding; no HCLEkPub -> refused unless allowed") {
    Bytes ek = tpm2b_for_rsa(c.ak_pub->n, 0);
    HclResult r = verify_hcl_report(h, ek, o);
    CHECK(r.error == SnpError::hcl_no_ek);
    CHECK(r.snp_result.ok());
    o.allow_missing_ek = true;
    r = verify_hcl_report(h, ek, o);
    INFO(r.message());
    CHECK(r.ok());
    CHECK(r.snp_result.product == Product::milan);
  }
  SECTION("the THIM copy of the VCEK is the same certificate") {
    o.verify.vek = read_testdata("snp/azure-constellation/vcek_thim.pem");
    o.allow_missing_ek = true;
    CHECK(verify_hcl_report(h, {}, o).ok());
  }
  SECTION("HCLAkPub vs aik_tpm") {
    CHECK(check_hcl_ak(c, tpm2b_for_rsa(c.ak_pub->n, 0)).ok());  // exponent 0 means 65537
    CHECK(check_hcl_ak(c, tpm2b_for_rsa(c.ak_pub->n, 65537)).ok());
    Bytes other = c.ak_pub->n;
    other[10] ^= 1;
    auto v = check_hcl_ak(c, tpm2b_for_rsa(other, 0));
    CHECK(v.error == SnpError::ak_binding);
    CHECK_THAT(v.reason, Catch::Contains("HCLAkPub"));
  }
  SECTION("claims tampered: binding fails") {
    Bytes t = blob;
    t[kHclClaimsOffset + 10] ^= 0x01;
    HclReport ht = parse_hcl_report(t);
    CHECK(verify_runtime_binding(ht).error == SnpError::hcl_binding);
    o.allow_missing_ek = true;
    CHECK(verify_hcl_report(ht, {}, o).error == SnpError::hcl_binding);
  }
  SECTION("debug-forbidding policy passes; a measurement list without Azure's value fails") {
    SnpPolicy p;
    p.allow_provisional_firmware = true;
    o.policy = &p;
    o.allow_missing_ek = true;
    auto r = verify_hcl_report(h, {}, o);
    INFO(r.message());
    CHECK(r.ok());
    p.measurements = {Bytes(48, 0)};
    CHECK(verify_hcl_report(h, {}, o).error == SnpError::measurement);
  }
}

TEST_CASE("HCLEkPub binds ek_tpm (synthetic claims)", "[azure][hcl]") {
  HclReport h = parse_hcl_report(read_testdata("snp/azure-constellation/hcl_report_reconstructed.bin"));
  HclClaims c = parse_claims(h);
  c.ek_pub = c.ak_pub;  // pretend the HCL published the EK too
  CHECK(check_hcl_ek(c, tpm2b_for_rsa(c.ek_pub->n, 0)).ok());
  Bytes other = c.ek_pub->n;
  other[0] ^= 0x40;
  CHECK(check_hcl_ek(c, tpm2b_for_rsa(other, 0)).error == SnpError::ek_binding);
  CHECK(check_hcl_ek(c, as_bytes("junk")).error == SnpError::ek_binding);
  // ek_tpm of the sample agent is a different key
  CHECK(check_hcl_ek(c, snptest::sample_ek_tpm()).error == SnpError::ek_binding);
}

TEST_CASE("kinvolk HCL blob: binding passes / the unrelated-chip VCEK is rejected (MANIFEST 7)", "[azure][hcl]") {
  Bytes blob = read_testdata("snp/azure-kinvolk/hcl-report-snp.bin");
  REQUIRE(blob.size() == 2048);  // NV index contents with zero padding
  HclReport h = parse_hcl_report(blob);
  CHECK(h.report_size == 1819);
  CHECK(h.claims_size == 583);
  CHECK(h.snp_report_raw == read_testdata("snp/azure-kinvolk/snp_report_extracted.bin"));
  CHECK(h.claims == read_testdata("snp/azure-kinvolk/runtime_claims_extracted.json"));
  CHECK(verify_runtime_binding(h).ok());
  HclClaims c = parse_claims(h);
  CHECK(c.ak_pub);
  CHECK(c.vm_unique_id.has_value());
  CHECK_FALSE(c.user_data);

  // certs.pem = VCEK (other chip) + ASK + ARK: the chain is genuine but the VCEK is not this chip's.
  auto certs = load_certificates(read_testdata("snp/azure-kinvolk/certs_vcek_ask_ark_unrelated_chip.pem"));
  REQUIRE(certs.size() == 3);
  AmdMilanStore s;
  HclCheckOptions o;
  o.verify.certs = s.source.get();
  o.verify.vek = snptest::to_der(certs[0].get());
  o.verify.intermediate = snptest::to_der(certs[1].get());
  o.allow_missing_ek = true;
  HclResult r = verify_hcl_report(h, {}, o);
  CHECK(r.error == SnpError::vek_mismatch);
  CHECK_THAT(r.reason, Catch::Contains("hwID"));
  // and directly: the chain itself is fine
  CHECK(verify_amd_chain(certs[0].get(), certs[1].get(), s.source->ark(Product::milan), Product::milan, VekKind::vcek,
                         std::chrono::system_clock::now())
            .ok());
}

TEST_CASE("malformed HCL reports", "[azure][hcl]") {
  Bytes good = read_testdata("snp/azure-kinvolk/hcl-report-snp.bin");
  auto rejects = [](const Bytes& b, const char* what) {
    try {
      parse_hcl_report(b);
      FAIL("accepted, expected " << what);
    } catch (const ParseError& e) {
      CHECK_THAT(e.what(), Catch::Contains("ERR_HCL_MALFORMED"));
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  rejects(Bytes(good.begin(), good.begin() + 1000), "shorter than its fixed part");
  Bytes sig = good;
  sig[0] = 'X';
  rejects(sig, "HCLA");
  Bytes tdx = good;
  tdx[kHclRuntimeDataOffset + 8] = 4;
  rejects(tdx, "TDX");
  Bytes hash = good;
  hash[kHclRuntimeDataOffset + 12] = 9;
  rejects(hash, "hash_type 9");
  Bytes size = good;
  size[kHclRuntimeDataOffset + 17] = 0x40;  // claims_size 16K+
  rejects(size, "extend beyond the blob");
  Bytes inner = good;
  inner[32] = 7;  // embedded report version
  rejects(inner, "embedded");
  Bytes json = good;
  json[kHclClaimsOffset] = '[';
  json[kHclClaimsOffset + 1] = '[';
  HclReport h = parse_hcl_report(json);
  CHECK_THROWS_AS(parse_claims(h), ParseError);
}
