// TPMS_ATTEST (TPM 2.0 Part 2, 10.12.12): the structure a TPM signs for TPM2_Quote and TPM2_Certify.
// Parsing only: no magic/type policy here, so callers can report "wrong magic" as a verdict
// rather than as malformed input.
#pragma once
#include <cstdint>
#include <vector>

#include "common/attest/crypto/bytes.hpp"

namespace kl::tpm {

inline constexpr std::uint32_t kTpmGeneratedValue = 0xFF544347;  // TPM_GENERATED_VALUE
inline constexpr std::uint16_t kStAttestCertify = 0x8017;         // TPM_ST_ATTEST_CERTIFY
inline constexpr std::uint16_t kStAttestQuote = 0x8018;           // TPM_ST_ATTEST_QUOTE

struct ClockInfo {
  std::uint64_t clock = 0;
  std::uint32_t reset_count = 0, restart_count = 0;
  bool safe = false;
};

struct PcrSelection {
  std::uint16_t hash_alg;
  std::vector<std::uint32_t> pcrs;  // pcr numbers, ascending
};

struct Attest {
  std::uint32_t magic = 0;
  std::uint16_t type = 0;
  Bytes qualified_signer, extra_data;
  ClockInfo clock;
  std::uint64_t firmware_version = 0;
  Bytes certified_name, certified_qualified_name;  // TPM_ST_ATTEST_CERTIFY
  std::vector<PcrSelection> pcr_select;            // TPM_ST_ATTEST_QUOTE
  Bytes pcr_digest;                                // TPM_ST_ATTEST_QUOTE
};

// Big-endian TPM marshalling, every length bounds-checked, whole input consumed.
// Any magic value is accepted (recorded in `magic`); the type must be TPM_ST_ATTEST_QUOTE or
// TPM_ST_ATTEST_CERTIFY because the rest of the layout depends on it.
// Limits: TPM2B_NAME <= 68 bytes, extraData/digest <= 64 bytes, <= 16 PCR selections,
// sizeofSelect <= 4. Throws kl::ParseError.
Attest parse_attest(ByteView tpms_attest);

}  // namespace kl::tpm
