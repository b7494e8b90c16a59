// Telling what an `ekcert` registration field holds once it is decoded to bytes (spec §6 step 1, §7.5): an X.509 EK
// certificate (normal path), an SEV-SNP report used as an EK-certificate surrogate (SVSM-vTPM), or an Azure CVM HCL
// report (NV 0x01400001 contents). The registrar tries its X.509 parsing first and calls detect_surrogate() only
// when that fails; classify_ekcert() does both for callers that have only the bytes.
#pragma once
#include "common/attest/crypto/bytes.hpp"

namespace kl::snp {

enum class EkcertKind { x509, snp_report, azure_hcl, unrecognized };

struct Detection {
  EkcertKind kind = EkcertKind::unrecognized;
  ByteView report;      // snp_report: the first 1184 bytes
  ByteView cert_table;  // snp_report: the certificate table after the report (empty if none or only zero padding)
  const char* reason = "";  // why unrecognized (for the 400 reason)
};

// For bytes that are NOT an X.509 certificate:
//  - starts with "HCLA" (0x414C4348 LE) and is long enough for the fixed part (1236 bytes) -> azure_hcl;
//  - length >= 1184, u32 version at 0 in {2,3,4,5}, and (length == 1184, or the tail is all zero (NV padding), or the
//    tail parses as an SNP certificate table) -> snp_report;
//  - else unrecognized.
// Content checks (signature, structure) are left to parse/verify; this only routes.
Detection detect_surrogate(ByteView decoded);

// Full classification: a complete DER X.509 certificate -> x509; otherwise detect_surrogate().
Detection classify_ekcert(ByteView decoded);

}  // namespace kl::snp
