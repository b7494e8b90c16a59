// SVSM-vTPM EK binding (spec §1.1, §6 step 8): REPORT_DATA (all 64 bytes) == SHA-512 of the TPM2B_PUBLIC bytes of
// `ek_tpm` exactly as the agent sent them (with the 2-byte size prefix; no padding, no re-marshalling).
#pragma once
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verdict.hpp"

namespace kl::snp {

struct EkBindingOptions {
  // Also accept SHA-512 of the bare TPMT_PUBLIC (ek_tpm without its size prefix). Not what the PoC does; only for
  // other surrogate producers (spec §6 step 8 [decision]).
  bool allow_bare_tpmt = false;
};

// ok iff the digest matches AND ek_tpm is a well-formed TPM2B_PUBLIC (size prefix == len-2) of an RSA or ECC key.
// SnpError::ek_binding with a reason otherwise.
SnpVerdict check_ek_binding(const SnpReport& report, ByteView ek_tpm, const EkBindingOptions& opts = {});

// The REPORT_DATA an SVSM would put in a report for this EK (SHA-512 of ek_tpm): for test signers and tools.
Bytes expected_report_data(ByteView ek_tpm);

}  // namespace kl::snp
