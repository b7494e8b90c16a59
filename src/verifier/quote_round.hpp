// One pull-mode attestation round, as a pure function (verification.md §0 step 3 and check_quote): the agent's
// quote response in, a Failure and the state to persist out. No sockets, no database, no clock.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/attest/quote/failure.hpp"
#include "common/attest/quote/tpm_policy.hpp"
#include "common/attest/tpm/attest.hpp"

namespace kl::verifier {

// What a round needs from the stored agent.
struct AttestationState {
  quote::TpmPolicy tpm_policy;
  std::vector<std::string> accept_hash_algs, accept_enc_algs, accept_sign_algs;
  std::optional<std::string> cached_pubkey;        // public_key column (from the last partial=0 answer)
  std::optional<tpm::ClockInfo> clock;             // tpm_clockinfo; nullopt = Keylime's initial state
  long long next_ima_ml_entry = 0;
  long long boottime = 0;
};

struct RoundResult {
  Failure failure{Component::quote_validation};
  // boottime changed at the expected IMA offset: IMA state reset, round inconclusive (Keylime QUIRK: no quote
  // check, attestation_count not incremented, not a failure).
  bool inconclusive = false;
  std::optional<std::string> pubkey;   // the key used for PCR 16 (response or cache)
  bool pubkey_from_response = false;
  std::string hash_alg, enc_alg, sign_alg;
  std::optional<tpm::ClockInfo> clock_update;   // to persist on success
  long long boottime = 0;
  long long next_ima_ml_entry = 0;
  bool ok() const { return !failure.failed() && !inconclusive; }
};

// Keylime's is_accepted: exact match, or equal after normalising the aliases ecc -> ecc256, rsa -> rsa2048.
bool algorithm_accepted(std::string_view alg, const std::vector<std::string>& accepted);

// `results` = the agent's JSON "results" object; `nonce` = what was sent; `ak` = the registrar's AK.
// Event labels come from `severity`. IMA and measured-boot evaluation are not part of this round yet: a quoted
// PCR 10 with a measurement list is treated as handled, without one it is pcr_validation.unused_pcr_10.
RoundResult evaluate_quote_response(const nlohmann::json& results, std::string_view nonce, EVP_PKEY* ak,
                                    const AttestationState& state, const SeverityPolicy& severity);

// internal.verifier.<id> (all irrecoverable): exception, no_quote, version_not_supported, no_v, not_reachable,
// not_reachable_v.
Failure internal_failure(std::string_view id, nlohmann::json context, const SeverityPolicy& severity);

}  // namespace kl::verifier
