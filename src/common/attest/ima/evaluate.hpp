// Validation of IMA entries against a runtime policy (verification.md §3.3 step list, §4.4-4.6) and
// the whole per-quote IMA step (parse, replay, match, evaluate, incremental state update), with
// upstream's event ids and contexts (component "ima").
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/ima_state.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/ima/measurement_list.hpp"
#include "common/attest/ima/replay.hpp"
#include "common/attest/ima/template_hash.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "common/attest/quote/failure.hpp"

namespace kl::ima {

struct EvaluationContext {
  const policy::CompiledPolicy* policy = nullptr;  // nullptr: no policy (upstream runtime_policy None)
  // Tenant keyring: the agent's ima_sign_verification_keys, else the policy's verification-keys.
  const ImaKeyring* tenant_keyring = nullptr;
  // Keyrings learned from ima-buf entries; keys accepted by the policy are added here. May be null
  // (then nothing is learned and only the tenant keyring verifies signatures).
  ImaKeyrings* learned = nullptr;
  // Boot aggregates computed from the measured-boot log, accepted for path "boot_aggregate" in
  // addition to the policy's digests (upstream appends them to the policy).
  const std::vector<std::string>* boot_aggregates = nullptr;
  // [verifier] ignore_tomtou_errors: upstream adds `ima.validation.tomtou` when this is TRUE.
  bool ignore_tomtou_errors = false;
  // Optional reusable regex match memory (one per thread); null => allocated per match.
  policy::ExcludeRegex::Scratch* scratch = nullptr;
};

// Entry.invalid(): ima_pcr, tomtou, ima_hash, then the template's policy check. Events go to `out`
// (a Failure of component ima).
void validate_entry(const Entry& entry, const EntryHashes& hashes, const EvaluationContext& ctx, Failure& out);

// Only the template-specific policy check (§4.4): ima/ima-ng, ima-sig, ima-buf.
void evaluate_entry_policy(const Entry& entry, const EvaluationContext& ctx, Failure& out);

struct ProcessOptions {
  crypto::HashAlg bank = crypto::HashAlg::sha1;  // the quote's PCR bank
  std::optional<Bytes> quoted_pcr10;             // nullopt: no PCR check (upstream pcrval None)
  std::shared_ptr<const policy::CompiledPolicy> policy;  // null => no policy
  // false: upstream's ima_keyrings None (no signature checks, nothing learned); the verifier always
  // passes keyrings (true).
  bool use_keyrings = true;
  std::optional<ImaKeyring> tenant_keyring;      // nullopt => the policy's verification-keys (if any)
  std::vector<std::string> boot_aggregates;
  bool ignore_tomtou_errors = false;
};

struct ProcessResult {
  std::string running_pcr_hex;  // final running value (upstream's return value)
  Failure failure{Component::ima};
  ReplayResult replay;
};

// Upstream process_measurement_list. With `state`: starts from its saved PCR 10 (same bank) or zeros,
// learns keyrings into it, at the first match saves the running value and advances next_entry by
// the match line, checks quote progress, and resets it on any failure.
ProcessResult process_measurement_list(std::string_view list_text, const ProcessOptions& options, ImaState* state);

}  // namespace kl::ima
