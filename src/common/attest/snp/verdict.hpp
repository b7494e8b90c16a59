// The outcome of an SNP / Azure surrogate check: a value, never an exception. The error codes are the
// step names of spec/snp-surrogate.md §6/§7.5 so the registrar can return them in its 400 reason text.
#pragma once
#include <string>
#include <string_view>

namespace kl::snp {

enum class SnpError {
  none,
  report_malformed,   // ERR_REPORT_MALFORMED (parse_report threw; callers map kl::ParseError to this)
  product_unknown,    // ERR_PRODUCT_UNKNOWN
  vek_unavailable,    // ERR_VEK_UNAVAILABLE: no VCEK/VLEK/ASK/ARK for the report
  chain_invalid,      // ERR_CHAIN_INVALID: VEK -> ASK/ASVK -> pinned ARK does not verify
  cert_expired,       // ERR_CERT_EXPIRED: a chain certificate is outside its validity at the check time
  revoked,            // ERR_REVOKED
  crl_unavailable,    // ERR_CRL_UNAVAILABLE (only when CRL checking is on and fail-closed)
  vek_mismatch,       // ERR_VEK_MISMATCH: cert kind / SPLs / hwID / product vs the report
  report_signature,   // ERR_REPORT_SIGNATURE
  ek_binding,         // ERR_EK_BINDING
  vmpl,               // ERR_VMPL
  policy_debug,       // ERR_POLICY_DEBUG
  policy,             // ERR_POLICY: other guest-policy / platform constraints (migration agent, SMT, ABI...)
  tcb,                // ERR_TCB
  measurement,        // ERR_MEASUREMENT (also host data / ID-key / author-key allow-lists)
  hcl_malformed,      // ERR_HCL_MALFORMED
  hcl_binding,        // ERR_HCL_BINDING
  hcl_no_ek,          // ERR_HCL_NO_EK
  ak_binding,         // ERR_AK_BINDING (HCLAkPub vs aik_tpm)
};

// "ERR_REPORT_SIGNATURE" etc.; "OK" for none.
std::string_view error_code(SnpError);

struct SnpVerdict {
  SnpError error = SnpError::none;
  std::string reason;  // human text naming what failed; empty when ok

  bool ok() const { return error == SnpError::none; }
  explicit operator bool() const { return ok(); }
  // "ERR_VMPL: report VMPL is 1, must be 0"
  std::string message() const;

  static SnpVerdict pass() { return {}; }
  static SnpVerdict fail(SnpError e, std::string why) { return {e, std::move(why)}; }
};

}  // namespace kl::snp
