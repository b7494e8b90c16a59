// One call for the registrar: the whole spec §6 algorithm for an SNP report received in `ekcert` (SVSM-vTPM EK
// surrogate): classify -> parse -> verify -> EK binding -> validate, first failure wins, plus the fields to store
// (§6 step 13). Each step stays available on its own (report.hpp, verify.hpp, ek_binding.hpp, policy.hpp).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/ek_binding.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verify.hpp"

namespace kl::snp {

struct SurrogateOptions {
  VerifyOptions verify;  // certs (required), clock, CRL, cache; vek/intermediate are filled from a cert table
  SnpPolicy policy;
  EkBindingOptions binding;
};

struct SurrogateResult : SnpVerdict {
  bool parsed = false;  // report parsed (report/verify are meaningful)
  SnpReport report;
  VerifyResult verify;
};

// `ekcert` = the decoded ekcert bytes (report, optionally followed by an extended-report certificate table);
// `ek_tpm` = the decoded ek_tpm bytes exactly as sent. Malformed input -> ERR_REPORT_MALFORMED (never throws for
// bad input).
SurrogateResult check_snp_surrogate(ByteView ekcert, ByteView ek_tpm, const SurrogateOptions& opts);

// What the registrar stores / shows for a verified surrogate (§6 step 13): {"type":"snp","product","version","vmpl",
// "chip_id","reported_tcb":{bl,tee,snp,ucode[,fmc]},"measurement","host_data","policy","vek_kind","vek_sha256",
// "report":<base64 of the 1184 bytes>}.
nlohmann::json surrogate_summary(const SnpReport& report, const VerifyResult& verify, ByteView raw_report);

}  // namespace kl::snp
