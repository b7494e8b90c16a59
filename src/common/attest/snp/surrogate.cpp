#include "common/attest/snp/surrogate.hpp"

#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/detect.hpp"

namespace kl::snp {

SurrogateResult check_snp_surrogate(ByteView ekcert, ByteView ek_tpm, const SurrogateOptions& opts) {
  SurrogateResult out;
  auto fail = [&](const SnpVerdict& v) {
    out.error = v.error;
    out.reason = v.reason;
    return out;
  };
  Detection d = detect_surrogate(ekcert);
  if (d.kind != EkcertKind::snp_report)
    return fail(SnpVerdict::fail(SnpError::report_malformed,
                                 d.kind == EkcertKind::azure_hcl ? "an Azure HCL report, not an SNP report" : d.reason));
  VerifyOptions vo = opts.verify;
  try {
    out.report = parse_report(d.report);
    if (!d.cert_table.empty()) {
      CertTable t = parse_cert_table(d.cert_table);
      if (!vo.vek) vo.vek = out.report.signing_key() == SigningKey::vlek ? t.vlek : t.vcek;
      if (!vo.intermediate) vo.intermediate = t.ask;  // the ARK of a table is never used: ARKs are pinned
    }
  } catch (const ParseError& e) {
    return fail(SnpVerdict::fail(SnpError::report_malformed, e.what()));
  }
  out.parsed = true;
  out.verify = verify_report(out.report, d.report, vo);
  if (!out.verify.ok()) return fail(out.verify);
  if (auto b = check_ek_binding(out.report, ek_tpm, opts.binding); !b.ok()) return fail(b);
  if (auto v = validate_report(out.report, opts.policy, out.verify.product); !v.ok()) return fail(v);
  return out;
}

nlohmann::json surrogate_summary(const SnpReport& r, const VerifyResult& v, ByteView raw) {
  TcbParts t = decode_tcb(r.reported_tcb, v.product == Product::unknown ? r.product : v.product);
  nlohmann::json tcb = {{"bl", t.bl}, {"tee", t.tee}, {"snp", t.snp}, {"ucode", t.ucode}};
  if (t.has_fmc) tcb["fmc"] = t.fmc;
  nlohmann::json j = {
      {"type", "snp"},
      {"product", std::string(product_name(v.product))},
      {"version", r.version},
      {"vmpl", r.vmpl},
      {"policy", r.policy},
      {"chip_id", hex_encode(r.chip_id)},
      {"reported_tcb", tcb},
      {"measurement", hex_encode(r.measurement)},
      {"host_data", hex_encode(r.host_data)},
      {"vek_kind", v.vek_kind ? (*v.vek_kind == VekKind::vcek ? "VCEK" : "VLEK") : ""},
      {"vek_sha256", v.vek_sha256},
  };
  if (raw.size() >= kReportSize) j["report"] = base64_encode(raw.first(kReportSize));
  return j;
}

}  // namespace kl::snp
