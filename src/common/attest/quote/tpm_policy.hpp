// tpm_policy: the PCR allowlist and the PCR mask (verification.md §2).
// Tenant side: normalize_tpm_policy + widen_mask (what the tenant stores on the verifier).
// Verifier side: parse_tpm_policy, then the check_pcrs steps below (component pcr_validation).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/quote/failure.hpp"

namespace kl::quote {

inline constexpr std::uint32_t kImaPcr = 10;
inline constexpr std::uint32_t kDataPcr = 16;
inline constexpr std::array<std::uint32_t, 15> kMeasuredBootPcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15};

using PcrHex = std::map<std::uint32_t, std::string>;  // PCR -> lowercase hex (see pcrs_hex())

// ---- mask ----
std::string mask_hex(std::uint32_t mask);                      // Python hex(): "0x0", "0x408000"
std::optional<std::uint32_t> parse_mask(std::string_view mask);  // Python int(mask, 0) for hex/decimal
bool mask_has(std::string_view mask, std::uint32_t pcr);         // false for an unparsable mask

// ---- tenant side ----
// Keylime readPolicy: keys all digits and <= 24, not 16 ("... keylime uses this PCR to bind data.") and not
// 10 ("... this PCR is used for IMA."); string values wrapped into lists; values lower-cased;
// "mask" = hex(OR of 1<<pcr). Throws kl::ParseError with Keylime's message.
nlohmann::json normalize_tpm_policy(const nlohmann::json& user_policy);

struct MaskWidening {
  bool ima = false;            // runtime policy / allowlist / policy name / verification keys in use
  bool measured_boot = false;  // --mb-policy or --mb-policy-name given
};
// ORs in PCR 10 and/or the measured-boot PCRs. Throws kl::ParseError if the policy already names one of
// those PCRs.
void widen_mask(nlohmann::json& normalized_policy, MaskWidening widening);

// ---- verifier side ----
struct TpmPolicy {
  std::map<std::uint32_t, std::vector<std::string>> allowed;  // values compared verbatim (exact match)
  std::string mask;                                           // "" when absent
};
// A stored tpm_policy (object or JSON text; "" / null = empty). Keys other than "mask" must be PCR numbers;
// values a string or a list of strings. Throws kl::ParseError.
TpmPolicy parse_tpm_policy(const nlohmann::json& policy);
TpmPolicy parse_tpm_policy_text(std::string_view json_text);

// ---- evaluation: Keylime's check_pcrs, step by step, so that the verifier can run IMA and measured
// boot in between and keep Keylime's event order. `done` collects the PCRs already handled. ----

// hex of H(0^n || H(utf8(pubkey_pem))) with the quote's hash.
std::string expected_data_pcr(std::string_view pubkey_pem, crypto::HashAlg hash);

// Step 2 (pull mode only): PCR 16 must hold expected_data_pcr(pubkey) -> else pcr_validation.invalid_pcr_16
// {"got","expected"}; absent -> pcr_validation.missing_pcr_16. Both recoverable. Adds 16 to `done` if present.
void check_data_pcr(const PcrHex& pcrs, std::string_view pubkey_pem, crypto::HashAlg hash, Failure& failure,
                    std::set<std::uint32_t>& done);

// One PCR against the allowlist: if `pcr` is in the policy and its value is not listed ->
// pcr_validation.invalid_pcr_<n> {"context": "PCR value is not in allowlist", "got", "expected"}.
void check_pcr_allowed(std::uint32_t pcr, const std::string& value, const TpmPolicy& policy, Failure& failure);

// Step 5: every quoted PCR not in `done`, ascending, through check_pcr_allowed; each added to `done`.
void check_remaining_pcrs(const PcrHex& pcrs, const TpmPolicy& policy, Failure& failure,
                          std::set<std::uint32_t>& done);

// Step 6: policy PCRs not in `done` -> pcr_validation.missing_pcrs
// {"context": "PCRs are missing in quote", "data": [ascending list]}.
void check_missing_pcrs(const TpmPolicy& policy, const std::set<std::uint32_t>& done, Failure& failure);

// The whole tpm_policy check for a quote without IMA or measured-boot evidence handled by the caller:
// data PCR (when pubkey_pem is set), PCR 10 without a measurement list -> pcr_validation.unused_pcr_10
// (when pcr10_unused; a quoted PCR 10 is never checked against the allowlist), remaining PCRs, missing
// PCRs. `handled` = PCRs the caller validated elsewhere.
struct PcrPolicyInput {
  std::optional<std::string> pubkey_pem;   // pull mode: the agent's payload key; nullopt skips PCR 16
  bool pcr10_unused = false;               // PCR 10 quoted but no ima_measurement_list sent
  std::set<std::uint32_t> handled;         // e.g. {10} after IMA, MB PCRs after measured boot
};
Failure validate_tpm_policy(const PcrHex& pcrs, const TpmPolicy& policy, crypto::HashAlg hash,
                            const PcrPolicyInput& input);

}  // namespace kl::quote
