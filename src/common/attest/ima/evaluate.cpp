#include "common/attest/ima/evaluate.hpp"

#include "common/attest/ima/fast_hash.hpp"
#include "common/attest/parse_error.hpp"

#include <algorithm>
#include <stdexcept>

namespace kl::ima {

namespace {

const std::vector<std::string> kValidation = {"validation"};
const std::vector<std::string> kValidationImaNg = {"validation", "ima-ng"};
const std::vector<std::string> kValidatorImaSig = {"validator", "ima-sig"};
const std::vector<std::string> kParser = {"parser"};

enum class Table { digests, keyrings, ima_buf };

bool excluded(const EvaluationContext& ctx, std::string_view path) {
  const auto& ex = ctx.policy->excludes();
  if (ex.empty()) return false;
  return ctx.scratch ? ex.matches(path, *ctx.scratch) : ex.matches(path);
}

// _validate_ima_ng: exclude -> accept; no entry -> not_in_allowlist; digest hex not listed ->
// runtime_policy_hash. Returns true when no event was added.
bool check_ima_ng(const Entry& e, const EvaluationContext& ctx, Table table, Failure& out) {
  if (!ctx.policy) return true;
  const auto& pol = *ctx.policy;
  if (excluded(ctx, e.name)) return true;
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
    if (ctx.policy && excluded(ctx, e.name)) return;
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

namespace {
void validate_impl(const Entry& e, bool violation, bool template_hash_ok, const EvaluationContext& ctx, Failure& out) {
  if (e.pcr != "10")
    out.add_event("ima_pcr", nlohmann::json{{"message", "IMA PCR is not the configured one"}, {"expected", "10"},
                                            {"got", e.pcr}},
                  true, kValidation);
  if (violation) {
    // QUIRK (upstream): the event is added when ignore_tomtou_errors is TRUE.
    if (ctx.ignore_tomtou_errors) out.add_event("tomtou", "hash validation was skipped", true, kValidation);
    return;
  }
  if (!template_hash_ok) {
    out.add_event("ima_hash",
                  nlohmann::json{{"message", "IMA template hash does not match the calculated hash."},
                                 {"expected", python_bytes_repr(e.template_hash)},
                                 {"got", python_bytes_repr(template_data(e))}},
                  true, kValidation);
    return;
  }
  evaluate_entry_policy(e, ctx, out);
}
}  // namespace

void validate_entry(const Entry& e, const EntryHashes& h, const EvaluationContext& ctx, Failure& out) {
  validate_impl(e, h.violation, h.template_hash_ok, ctx, out);
}

ProcessResult process_measurement_list(std::string_view list_text, const ProcessOptions& opt, ImaState* state) {
  ProcessResult result;
  const policy::CompiledPolicy* pol = opt.policy.get();
  const crypto::HashAlg log_alg = pol ? pol->log_hash_alg() : crypto::HashAlg::sha1;
  const crypto::HashAlg bank = opt.bank;
  const std::size_t log_size = crypto::digest_size(log_alg);
  const std::size_t bank_size = crypto::digest_size(bank);

  ImaKeyrings local_learned;
  policy::ExcludeRegex::Scratch scratch;
  EvaluationContext ctx;
  ctx.policy = pol;
  if (opt.use_keyrings) {
    ctx.learned = state ? &state->learned_keyrings : &local_learned;
    if (opt.tenant_keyring) ctx.tenant_keyring = &*opt.tenant_keyring;
    else if (pol && pol->verification_keys()) ctx.tenant_keyring = &*pol->verification_keys();
  }
  ctx.boot_aggregates = &opt.boot_aggregates;
  ctx.ignore_tomtou_errors = opt.ignore_tomtou_errors;
  ctx.scratch = &scratch;

  // One streaming pass (parse, hash, extend, match, validate per line) with reused buffers: the
  // same steps as parse_list + hash_entries + replay_pcr10 + validate_entry, without materialising
  // the whole list.
  detail::DigestValue running;
  if (state && state->pcr10 && state->bank == bank && state->pcr10->size() == bank_size) {
    std::copy(state->pcr10->begin(), state->pcr10->end(), running.bytes.begin());
  }
  running.size = bank_size;
  ReplayResult& rr = result.replay;
  const Bytes* quoted = opt.quoted_pcr10 ? &*opt.quoted_pcr10 : nullptr;
  auto equals_quoted = [&] {
    return quoted && quoted->size() == running.size && std::equal(quoted->begin(), quoted->end(), running.bytes.begin());
  };
  if (equals_quoted()) {
    rr.match_line = 0;
    rr.value_at_match = running.to_bytes();
  }

  Failure& failure = result.failure;
  Entry entry;
  Bytes data;
  detail::DigestValue ff;
  ff.size = bank_size;
  std::fill(ff.bytes.begin(), ff.bytes.begin() + static_cast<std::ptrdiff_t>(bank_size), 0xFF);
  std::size_t index = 0, pos = 0;
  while (pos <= list_text.size()) {
    std::size_t nl = list_text.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? list_text.size() : nl;
    const std::string_view line = list_text.substr(pos, end - pos);
    if (!line.empty()) {
      ++rr.log_length;
      bool parsed = true;
      try {
        parse_entry(line, entry);
      } catch (const ParseError&) {
        parsed = false;
      }
      if (!parsed) {
        failure.add_event("entry", "Line was not parsable into a valid IMA entry: " + std::string(line), true, kParser);
      } else {
        const bool violation =
            entry.template_hash.size() == log_size &&
            std::all_of(entry.template_hash.begin(), entry.template_hash.end(), [](auto b) { return b == 0; });
        bool template_hash_ok = true;
        // The policy lookup after the hashing misses the cache twice on a large policy (slot, then record):
        // start both loads now so they overlap the hashing.
        const policy::DigestTable* lookup = pol ? &pol->digests() : nullptr;
        if (lookup) lookup->prefetch_slot(entry.name);
        if (violation) {
          running = detail::fast_digest2(bank, running.view(), ff.view());
        } else {
          template_data(entry, data);
          const auto pcr_th = detail::fast_digest(bank, data);
          if (lookup) lookup->prefetch_record(entry.name);
          const auto log_th = log_alg == bank ? pcr_th : detail::fast_digest(log_alg, data);
          template_hash_ok = log_th.size == entry.template_hash.size() &&
                             std::equal(entry.template_hash.begin(), entry.template_hash.end(), log_th.bytes.begin());
          running = detail::fast_digest2(bank, running.view(), pcr_th.view());
        }
        if (!rr.match_line && equals_quoted()) {
          rr.match_line = index + 1;
          rr.value_at_match = running.to_bytes();
        }
        validate_impl(entry, violation, template_hash_ok, ctx, failure);
      }
    }
    ++index;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  rr.final_value = running.to_bytes();

  if (state && rr.match_line && *rr.match_line > 0) {
    // The state keeps the value at the match, so the lines after it are asked for again next time.
    state->pcr10 = rr.value_at_match;
    state->bank = bank;
    state->next_entry += *rr.match_line;
  }

  if (quoted && !rr.matched()) {
    failure.add_event("pcr_mismatch", "IMA measurement list does not match TPM PCR " + hex_encode(*quoted), true);
  } else if (state) {
    const std::int64_t match = quoted ? static_cast<std::int64_t>(*rr.match_line) : -1;
    if (!check_quote_progress(state->quote_progress, match, static_cast<std::int64_t>(rr.log_length)))
      failure.add_event("quote_progress", "PCR quote did not make progress to catch up with log", true);
  }

  result.running_pcr_hex = hex_encode(rr.final_value);
  if (failure.failed() && state) state->reset();  // any IMA failure: the next round asks for the whole log
  return result;
}

}  // namespace kl::ima
