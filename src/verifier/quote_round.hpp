// One pull-mode attestation round, as a pure function (verification.md §0 step 3, check_quote and check_pcrs):
// the agent's quote response in, a Failure and the state to persist out. No sockets, no database, no clock.
// IMA (§3, §4) and measured boot (§5) are judged here, in upstream's order and with its event ids.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/attest/ima/ima_state.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/mb/policy.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "common/attest/quote/failure.hpp"
#include "common/attest/quote/tpm_policy.hpp"
#include "common/attest/tpm/attest.hpp"

namespace kl::verifier {

// An agent's measured-boot policy row (mbpolicies.mb_policy) read once: the text as stored and, when it is
// JSON, the parsed reference state. Shared by every agent that uses the row.
struct MbPolicyData {
  std::string text;            // "" for NULL
  bool present = false;        // mb_policy is not NULL (upstream `mb_policy is not None`)
  bool valid = false;          // Keylime's policy_is_valid: non-empty JSON, not null
  bool nonempty = false;       // valid and truthy ({} means accept-all: nothing is checked)
  mb::Refstate refstate;       // parsed when valid
};
MbPolicyData make_mb_policy_data(const std::optional<std::string>& text);

// What a round needs from the stored agent.
struct AttestationState {
  quote::TpmPolicy tpm_policy;
  std::vector<std::string> accept_hash_algs, accept_enc_algs, accept_sign_algs;
  std::optional<std::string> cached_pubkey;        // public_key column (from the last partial=0 answer)
  std::optional<tpm::ClockInfo> clock;             // tpm_clockinfo; nullopt = Keylime's initial state
  ima::ImaState ima;                               // incremental IMA state (next entry, PCR 10, keyrings, ...)
  long long attestation_count = 0;                 // for measured_boot_evaluate = once

  // The agent's runtime policy, compiled (null => upstream's EMPTY_RUNTIME_POLICY).
  std::shared_ptr<const policy::CompiledPolicy> runtime_policy;
  // ima_sign_verification_keys: nullopt = not set (the policy's verification-keys apply); an empty keyring
  // when set but unusable (upstream then has no tenant keyring at all).
  std::optional<ima::ImaKeyring> tenant_keyring;
  std::shared_ptr<const MbPolicyData> mb_policy;   // null => no measured-boot policy (NULL column)
  std::string mb_policy_name = "accept-all";       // [verifier] measured_boot_policy_name
  bool mb_evaluate_always = false;                 // [verifier] measured_boot_evaluate = always
  bool ignore_tomtou_errors = false;               // [verifier] ignore_tomtou_errors
};

struct RoundResult {
  Failure failure{Component::quote_validation};
  // boottime changed at the expected IMA offset: IMA state reset, the quote checked (a bad one is a failure), then
  // the round is inconclusive: attestation_count not incremented, not a failure (upstream skips the quote check).
  bool inconclusive = false;
  std::optional<std::string> pubkey;   // the key used for PCR 16 (response or cache)
  bool pubkey_from_response = false;
  std::string hash_alg, enc_alg, sign_alg;
  std::optional<tpm::ClockInfo> clock_update;   // to persist on success
  ima::ImaState ima;                            // IMA state after the round (persist it)
  bool ima_replayed = false;                    // the measurement list was replayed against the quoted PCR 10
  bool ima_matched = false;                     // ... and reproduced it
  bool ok() const { return !failure.failed() && !inconclusive; }
};

// Keylime's is_accepted: exact match, or equal after normalising the aliases ecc -> ecc256, rsa -> rsa2048.
bool algorithm_accepted(std::string_view alg, const std::vector<std::string>& accepted);

// `results` = the agent's JSON "results" object; `nonce` = what was sent; `ak` = the registrar's AK.
// Event labels come from `severity`. A quoted PCR 10 is accepted only when the measurement list replays to it
// (ima.pcr_mismatch otherwise; pcr_validation.unused_pcr_10 without a list).
RoundResult evaluate_quote_response(const nlohmann::json& results, std::string_view nonce, EVP_PKEY* ak,
                                    const AttestationState& state, const SeverityPolicy& severity);

// internal.verifier.<id> (all irrecoverable): exception, no_quote, version_not_supported, no_v, not_reachable,
// not_reachable_v.
Failure internal_failure(std::string_view id, nlohmann::json context, const SeverityPolicy& severity);

}  // namespace kl::verifier
