// Azure confidential-VM HCL attestation report (NV index 0x01400001; spec §7): parse, runtime-data binding, and the
// HCLEkPub / HCLAkPub keys of the runtime claims against the agent's ek_tpm / aik_tpm. The embedded SNP report is
// verified with kl::snp::verify_report / validate_report (verify_hcl_report chains them).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verdict.hpp"
#include "common/attest/snp/verify.hpp"

namespace kl::azure {

inline constexpr std::uint32_t kHclSignature = 0x414C4348;  // "HCLA"
inline constexpr std::size_t kHclReportOffset = 32;
inline constexpr std::size_t kHclRuntimeDataOffset = 32 + 1184;  // 1216
inline constexpr std::size_t kHclClaimsOffset = 1216 + 20;       // 1236

struct HclReport {
  // header (not signed by anything; informational, the size field is not relied on)
  std::uint32_t version = 0, report_size = 0, request_type = 0, status = 0;
  Bytes snp_report_raw;  // the 1184 hardware-report bytes
  snp::SnpReport snp;    // parsed from snp_report_raw
  // runtime-data header
  std::uint32_t data_size = 0, runtime_version = 0, report_type = 0, hash_type = 0, claims_size = 0;
  Bytes claims;          // the N claim bytes exactly as stored (the binding is over these)
};

// Throws kl::ParseError ("ERR_HCL_MALFORMED: ...") for: short input, bad signature, report_type != 2 (TDX is
// "unsupported"), hash_type not 1/2/3, claims beyond the blob, a malformed embedded SNP report. Trailing zero padding
// (NV indexes are read whole) is allowed.
HclReport parse_hcl_report(ByteView blob);

struct RsaJwk {
  Bytes n, e;  // big-endian, leading zeros stripped
};

struct HclClaims {
  std::optional<RsaJwk> ak_pub;  // kid HCLAkPub
  std::optional<RsaJwk> ek_pub;  // kid HCLEkPub
  std::optional<std::string> vm_unique_id;
  std::optional<Bytes> user_data;  // 64 bytes when present
  nlohmann::json json;
};

// Throws kl::ParseError for invalid JSON, a non-RSA key with one of the two kids, bad base64url.
HclClaims parse_claims(const HclReport& r);

// REPORT_DATA[0:H] == hash_type digest of the claim bytes and REPORT_DATA[H:64] zero -> else ERR_HCL_BINDING.
snp::SnpVerdict verify_runtime_binding(const HclReport& r);

// HCLEkPub (n, e) == the RSA key inside ek_tpm (TPM2B_PUBLIC; exponent 0 = 65537) -> else ERR_EK_BINDING;
// no HCLEkPub -> ERR_HCL_NO_EK unless allow_missing_ek.
snp::SnpVerdict check_hcl_ek(const HclClaims& c, ByteView ek_tpm, bool allow_missing_ek = false);
// HCLAkPub == the RSA key inside aik_tpm -> else ERR_AK_BINDING (absent HCLAkPub also fails).
snp::SnpVerdict check_hcl_ak(const HclClaims& c, ByteView aik_tpm);

struct HclCheckOptions {
  snp::VerifyOptions verify;
  const snp::SnpPolicy* policy = nullptr;  // nullptr: skip validate_report
  bool allow_missing_ek = false;
};

struct HclResult : snp::SnpVerdict {
  snp::VerifyResult snp_result;
  std::optional<HclClaims> claims;
};

// §7.5 steps 2-4 on a parsed report: embedded report verify (+ validate with `policy`), runtime binding, claims,
// HCLEkPub vs ek_tpm (skipped when ek_tpm is empty). The first failure decides.
HclResult verify_hcl_report(const HclReport& r, ByteView ek_tpm, const HclCheckOptions& opts);

}  // namespace kl::azure
