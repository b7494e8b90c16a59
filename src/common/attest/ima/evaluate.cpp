#include "common/attest/ima/evaluate.hpp"

#include <algorithm>
#include <stdexcept>

namespace kl::ima {

namespace {

const std::vector<std::string> kValidation = {"validation"};
const std::vector<std::string> kValidationImaNg = {"validation", "ima-ng"};
const std::vector<std::string> kValidatorImaSig = {"validator", "ima-sig"};
const std::vector<std::string> kParser = {"parser"};

enum class Table { digests, keyrings, ima_buf };

// _validate_ima_ng: exclude -> accept; no entry -> not_in_allowlist; digest hex not listed ->
// runtime_policy_hash. Returns true when no event was added.
bool check_ima_ng(const Entry& e, const EvaluationContext& ctx, Table table, Failure& out) {
  if (!ctx.policy) return true;
  const auto& pol = *ctx.policy;
  if (pol.excludes().matches(e.name)) return true;
  const policy::DigestTable& t =
      table == Table::digests ? pol.digests() : table == Table::keyrings ? pol.keyrings() : pol.ima_buf();
  auto hit = t.find(e.name);
  // Boot aggregates from the measured-boot log count as digests of "boot_aggregate" (upstream appends
  // them to the policy, creating the entry when missing).
  const std::vector<std::string>* extra =
      (table == Table::digests && ctx.boot_aggregates && !ctx.boot_aggregates->empty() && e.name == "boot_aggregate")
          ? ctx.boot_aggregates
          : nullptr;
  if (!hit && !extra) {
    out.add_event("not_in_allowlist", "File not found in allowlist: " + e.name, true, kValidationImaNg);
    return false;
  }
  if (hit && hit->contains(e.digest.hash)) return true;
  const std::string hex = hex_encode(e.digest.hash);
  if (extra && std::find(extra->begin(), extra->end(), hex) != extra->end()) return true;
  std::vector<std::string> expected = hit ? hit->as_strings() : std::vector<std::string>{};
  if (extra)
    for (const auto& v : *extra)
      if (std::find(expected.begin(), expected.end(), v) == expected.end()) expected.push_back(v);
  out.add_event("runtime_policy_hash",
                nlohmann::json{{"message", "Hash not found in runtime policy"}, {"got", hex}, {"expected", expected}},
                true, kValidationImaNg);
  return false;
}

void check_ima_sig(const Entry& e, const EvaluationContext& ctx, Failure& out) {
  const bool have_keyrings = ctx.learned != nullptr || ctx.tenant_keyring != nullptr;
  if (have_keyrings && e.signature) {
    if (ctx.policy && ctx.policy->excludes().matches(e.name)) return;
    static const ImaKeyrings kNone;
    const ImaKeyrings& learned = ctx.learned ? *ctx.learned : kNone;
    if (verify_file_signature(learned, ctx.tenant_keyring, *e.signature, e.digest.hash, e.digest.algorithm)) return;
  }
  if (ctx.policy) {
    check_ima_ng(e, ctx, Table::digests, out);  // a bad or missing signature falls back to the digests
    return;
  }
  if (!have_keyrings) return;
  out.add_event("invalid_signature", "signature for file " + e.name + " could not be validated", true,
                kValidatorImaSig);
}

void check_ima_buf(const Entry& e, const EvaluationContext& ctx, Failure& out) {
  std::optional<BufferKey> key;
  try {
    key = key_from_buffer(e.buffer);
  } catch (const std::invalid_argument& err) {
    out.add_event("invalid_key", "key from " + e.name + " does not have a supported key: " + err.what(), true);
    return;
  }
  if (key) {
    if (ctx.policy && ctx.policy->keyring_ignored(e.name)) return;  // accepted, not learned
    if (check_ima_ng(e, ctx, Table::keyrings, out) && ctx.learned)
      ctx.learned->add_key(e.name, key->key, key->keyid);  // learned only once the policy accepts it
    return;
  }
  check_ima_ng(e, ctx, Table::ima_buf, out);
}

}  // namespace

void evaluate_entry_policy(const Entry& e, const EvaluationContext& ctx, Failure& out) {
  switch (e.kind) {
    case Template::ima:
    case Template::ima_ng: check_ima_ng(e, ctx, Table::digests, out); return;
    case Template::ima_sig: check_ima_sig(e, ctx, out); return;
    case Template::ima_buf: check_ima_buf(e, ctx, out); return;
  }
}

void validate_entry(const Entry& e, const EntryHashes& h, const EvaluationContext& ctx, Failure& out) {
  if (e.pcr != "10")
    out.add_event("ima_pcr", nlohmann::json{{"message", "IMA PCR is not the configured one"}, {"expected", "10"},
                                            {"got", e.pcr}},
                  true, kValidation);
  if (h.violation) {
    // QUIRK (upstream): the event is added when ignore_tomtou_errors is TRUE.
    if (ctx.ignore_tomtou_errors) out.add_event("tomtou", "hash validation was skipped", true, kValidation);
    return;
  }
  if (!h.template_hash_ok) {
    out.add_event("ima_hash",
                  nlohmann::json{{"message", "IMA template hash does not match the calculated hash."},
                                 {"expected", python_bytes_repr(e.template_hash)},
                                 {"got", python_bytes_repr(template_data(e))}},
                  true, kValidation);
    return;
  }
  evaluate_entry_policy(e, ctx, out);
}

ProcessResult process_measurement_list(std::string_view list_text, const ProcessOptions& opt, ImaState* state) {
  ProcessResult result;
  const policy::CompiledPolicy* pol = opt.policy.get();
  const crypto::HashAlg log_alg = pol ? pol->log_hash_alg() : crypto::HashAlg::sha1;

  const auto lines = parse_list(list_text);
  const auto hashes = hash_entries(lines, log_alg, opt.bank);

  Bytes start = initial_pcr10(opt.bank);
  if (state && state->pcr10 && state->bank == opt.bank) start = *state->pcr10;
  std::optional<ByteView> quoted;
  if (opt.quoted_pcr10) quoted = ByteView(*opt.quoted_pcr10);
  result.replay = replay_pcr10(lines, hashes, opt.bank, start, quoted);

  ImaKeyrings local_learned;
  EvaluationContext ctx;
  ctx.policy = pol;
  if (opt.use_keyrings) {
    ctx.learned = state ? &state->learned_keyrings : &local_learned;
    if (opt.tenant_keyring) ctx.tenant_keyring = &*opt.tenant_keyring;
    else if (pol && pol->verification_keys()) ctx.tenant_keyring = &*pol->verification_keys();
  }
  ctx.boot_aggregates = &opt.boot_aggregates;
  ctx.ignore_tomtou_errors = opt.ignore_tomtou_errors;

  Failure& failure = result.failure;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (!line.entry) {
      failure.add_event("entry", "Line was not parsable into a valid IMA entry: " + std::string(line.text), true,
                        kParser);
      continue;
    }
    validate_entry(*line.entry, *hashes[i], ctx, failure);
  }

  if (state && result.replay.match_line && *result.replay.match_line > 0) {
    // The state keeps the value at the match, so the lines after it are asked for again next time.
    state->pcr10 = result.replay.value_at_match;
    state->bank = opt.bank;
    state->next_entry += *result.replay.match_line;
  }

  if (opt.quoted_pcr10 && !result.replay.matched()) {
    failure.add_event("pcr_mismatch",
                      "IMA measurement list does not match TPM PCR " + hex_encode(*opt.quoted_pcr10), true);
  } else if (state) {
    const std::int64_t match = opt.quoted_pcr10 ? static_cast<std::int64_t>(*result.replay.match_line) : -1;
    if (!check_quote_progress(state->quote_progress, match, static_cast<std::int64_t>(result.replay.log_length)))
      failure.add_event("quote_progress", "PCR quote did not make progress to catch up with log", true);
  }

  result.running_pcr_hex = hex_encode(result.replay.final_value);
  if (failure.failed() && state) state->reset();  // any IMA failure: the next round asks for the whole log
  return result;
}

}  // namespace kl::ima
