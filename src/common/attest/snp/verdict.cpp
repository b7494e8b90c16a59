#include "common/attest/snp/verdict.hpp"

namespace kl::snp {

std::string_view error_code(SnpError e) {
  switch (e) {
    case SnpError::none: return "OK";
    case SnpError::report_malformed: return "ERR_REPORT_MALFORMED";
    case SnpError::product_unknown: return "ERR_PRODUCT_UNKNOWN";
    case SnpError::vek_unavailable: return "ERR_VEK_UNAVAILABLE";
    case SnpError::chain_invalid: return "ERR_CHAIN_INVALID";
    case SnpError::cert_expired: return "ERR_CERT_EXPIRED";
    case SnpError::revoked: return "ERR_REVOKED";
    case SnpError::crl_unavailable: return "ERR_CRL_UNAVAILABLE";
    case SnpError::vek_mismatch: return "ERR_VEK_MISMATCH";
    case SnpError::report_signature: return "ERR_REPORT_SIGNATURE";
    case SnpError::ek_binding: return "ERR_EK_BINDING";
    case SnpError::vmpl: return "ERR_VMPL";
    case SnpError::policy_debug: return "ERR_POLICY_DEBUG";
    case SnpError::policy: return "ERR_POLICY";
    case SnpError::tcb: return "ERR_TCB";
    case SnpError::measurement: return "ERR_MEASUREMENT";
    case SnpError::hcl_malformed: return "ERR_HCL_MALFORMED";
    case SnpError::hcl_binding: return "ERR_HCL_BINDING";
    case SnpError::hcl_no_ek: return "ERR_HCL_NO_EK";
    case SnpError::ak_binding: return "ERR_AK_BINDING";
  }
  return "ERR_UNKNOWN";
}

std::string SnpVerdict::message() const {
  std::string m(error_code(error));
  if (!reason.empty()) m += ": " + reason;
  return m;
}

}  // namespace kl::snp
