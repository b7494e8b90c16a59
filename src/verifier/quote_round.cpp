#include "verifier/quote_round.hpp"

#include <algorithm>
#include <set>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/evaluate.hpp"
#include "common/attest/ima/replay.hpp"
#include "common/attest/mb/boot_log.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/quote/clock_check.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/quote/quote_verify.hpp"

namespace kl::verifier {

namespace {

using nlohmann::json;

std::string normalize_alg(std::string_view a) {
  if (a == "ecc") return "ecc256";
  if (a == "rsa") return "rsa2048";
  return std::string(a);
}

bool recognised_hash(std::string_view h) {
  return h == "sha1" || h == "sha256" || h == "sha384" || h == "sha512" || h == "sm3_256";
}

std::optional<std::string> string_field(const json& r, const char* key) {
  if (!r.contains(key) || !r[key].is_string()) return std::nullopt;
  return r[key].get<std::string>();
}

// Python int(): an integer, or a string holding one.
std::optional<long long> int_field(const json& r, const char* key, long long fallback, bool& bad) {
  if (!r.contains(key) || r[key].is_null()) return fallback;
  const json& v = r[key];
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      const long long n = std::stoll(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return n;
    } catch (const std::exception&) {
    }
  }
  bad = true;
  return std::nullopt;
}

const std::shared_ptr<const policy::CompiledPolicy>& empty_compiled_policy() {
  // Immutable after construction: shared by every agent without a runtime policy.
  static const std::shared_ptr<const policy::CompiledPolicy> kEmpty =
      policy::CompiledPolicy::compile(policy::empty_runtime_policy());
  return kEmpty;
}

// Every boot aggregate of every bank in the parsed log (upstream appends them all to digests["boot_aggregate"]).
std::vector<std::string> all_boot_aggregates(const mb::ParsedBootLog& parsed) {
  std::vector<std::string> out;
  const auto& agg = parsed.data.contains("boot_aggregates") ? parsed.data["boot_aggregates"] : json();
  if (!agg.is_object()) return out;
  for (const auto& [alg, values] : agg.items())
    if (values.is_array())
      for (const auto& v : values)
        if (v.is_string() && std::find(out.begin(), out.end(), v.get<std::string>()) == out.end())
          out.push_back(v.get<std::string>());
  return out;
}

}  // namespace

MbPolicyData make_mb_policy_data(const std::optional<std::string>& text) {
  MbPolicyData d;
  if (!text) return d;
  d.present = true;
  d.text = *text;
  d.valid = mb::refstate_is_valid(d.text);
  if (d.valid) {
    d.refstate = mb::parse_refstate(d.text);
    const json& v = d.refstate.value;
    // Python truthiness of the loaded JSON: {} / [] / "" / 0 / false are "empty".
    d.nonempty = !(v.is_null() || ((v.is_object() || v.is_array() || v.is_string()) && v.empty()) ||
                   (v.is_boolean() && !v.get<bool>()) || (v.is_number() && v.get<double>() == 0));
  }
  return d;
}

bool algorithm_accepted(std::string_view alg, const std::vector<std::string>& accepted) {
  for (const auto& a : accepted)
    if (a == alg || normalize_alg(a) == normalize_alg(alg)) return true;
  return false;
}

Failure internal_failure(std::string_view id, json context, const SeverityPolicy& severity) {
  Failure f(Component::internal, {"verifier"}, severity);
  f.add_event(id, std::move(context), false);
  return f;
}

RoundResult evaluate_quote_response(const json& r, std::string_view nonce, EVP_PKEY* ak, const AttestationState& st,
                                    const SeverityPolicy& severity) {
  RoundResult out;
  out.failure = Failure(Component::quote_validation, {}, severity);
  out.ima = st.ima;

  const auto quote_text = string_field(r, "quote");
  if (!r.is_object() || !quote_text) {
    out.failure.add_event("invalid_data", {{"message", "data received from agent was not valid"}}, false);
    return out;
  }
  bool bad = false;
  const auto entry = int_field(r, "ima_measurement_list_entry", 0, bad);
  const auto boottime = int_field(r, "boottime", 0, bad);
  if (bad) {
    out.failure = internal_failure("exception",
                                   {{"context", "Agent attestation caused an exception"},
                                    {"data", "ima_measurement_list_entry or boottime is not an integer"}},
                                   severity);
    return out;
  }

  if (const auto pk = string_field(r, "pubkey"); pk && !pk->empty()) {
    out.pubkey = *pk;
    out.pubkey_from_response = true;
  } else if (st.cached_pubkey && !st.cached_pubkey->empty()) {
    out.pubkey = st.cached_pubkey;
  } else {
    out.failure.add_event("no_pubkey", {{"message", "Agent did not send a public key and none is cached"}}, false);
    return out;
  }

  out.hash_alg = string_field(r, "hash_alg").value_or("");
  out.enc_alg = string_field(r, "enc_alg").value_or("");
  out.sign_alg = string_field(r, "sign_alg").value_or("");
  if (out.hash_alg.empty() || !algorithm_accepted(out.hash_alg, st.accept_hash_algs) || !recognised_hash(out.hash_alg)) {
    out.failure.add_event("invalid_hash_alg",
                          {{"message", "Hash algorithm " + out.hash_alg + " is not accepted or not recognised"},
                           {"data", out.hash_alg}},
                          false);
    return out;
  }
  if (!algorithm_accepted(out.enc_alg, st.accept_enc_algs)) {
    out.failure.add_event("invalid_enc_alg",
                          {{"message", "Encryption algorithm " + out.enc_alg + " is not accepted"}, {"data", out.enc_alg}},
                          false);
    return out;
  }
  if (!algorithm_accepted(out.sign_alg, st.accept_sign_algs)) {
    out.failure.add_event("invalid_sign_alg",
                          {{"message", "Signing algorithm " + out.sign_alg + " is not accepted"}, {"data", out.sign_alg}},
                          false);
    return out;
  }

  // IMA offset and reboot tracking (§0 step 3.5, §3.6).
  const std::uint64_t expected_entry = out.ima.next_entry;
  bool rebooted = false;
  const std::uint64_t got_entry = *entry < 0 ? ~std::uint64_t{0} : static_cast<std::uint64_t>(*entry);
  switch (ima::check_ima_offset(out.ima, got_entry, *boottime)) {
    case ima::OffsetDecision::entry_mismatch:
      // Irrecoverable, but upstream carries on with the round.
      out.failure.add_event("invalid_ima_entry_nb",
                            {{"message", "Agent did not respond with requested next IMA measurement list entry"},
                             {"got", *entry},
                             {"expected", expected_entry}},
                            false);
      break;
    case ima::OffsetDecision::rebooted:
      // Upstream returns success here without checking the quote (QUIRK, weakens security): we still check it.
      rebooted = true;
      break;
    case ima::OffsetDecision::full_replay:
    case ima::OffsetDecision::incremental: break;
  }
  if (!rebooted) out.ima.boottime = *boottime;

  // check_quote: signature, nonce, PCR digest.
  quote::QuoteParts parts;
  try {
    parts = quote::parse_quote_string(*quote_text);
  } catch (const ParseError& e) {
    // Keylime lets this escape as an exception in pull mode.
    out.failure = internal_failure("exception",
                                   {{"context", "Agent attestation caused an exception"}, {"data", e.what()}}, severity);
    return out;
  }
  const auto check = quote::verify_quote(parts, nonce, out.hash_alg, ak);
  if (!check.ok()) {
    Failure f = check.to_failure();
    f.apply_severity_policy(severity);
    out.failure.merge(f);
    return out;
  }
  const auto& vq = *check.quote;

  const tpm::ClockInfo previous = st.clock.value_or(quote::initial_clock_info());
  const auto clock = quote::check_clock(previous, vq.clock);
  if (!clock.ok()) {
    Failure f = quote::clock_failure(clock.error);
    f.apply_severity_policy(severity);
    out.failure.merge(f);
    return out;
  }
  out.clock_update = clock.update;
  if (rebooted) {
    // A good quote, but the IMA list it came with belongs to another boot: inconclusive, the next request asks
    // for the whole log (state reset above). Not counted as an attestation, as upstream.
    out.inconclusive = true;
    return out;
  }

  // ---- check_pcrs, step by step in upstream's order (§2.2) ----
  const auto pcrs = quote::pcrs_hex(vq.pcrs);
  Failure pcr(Component::pcr_validation);
  std::set<std::uint32_t> done;

  // 1. Boot log parse (measured_boot.parser.*). Undecodable base64 escapes as an exception upstream.
  const std::optional<std::string> mb_list = string_field(r, "mb_measurement_list");
  mb::BootLogResult mb_log;
  try {
    mb_log = mb::bootlog_parse(mb_list, vq.hash_alg);
  } catch (const ParseError& e) {
    out.failure = internal_failure("exception",
                                   {{"context", "Agent attestation caused an exception"}, {"data", e.what()}}, severity);
    return out;
  }
  pcr.merge(mb_log.failure);
  const bool mb_parse_failed = mb_log.failure.failed();

  // 2. PCR 16 binds the payload key.
  if (out.pubkey) quote::check_data_pcr(pcrs, *out.pubkey, vq.hash_alg, pcr, done);

  // 3. PCR 10: the IMA list must replay to the quoted value, and every entry must satisfy the runtime policy.
  if (auto p10 = pcrs.find(quote::kImaPcr); p10 != pcrs.end()) {
    const bool has_list = r.contains("ima_measurement_list") && r["ima_measurement_list"].is_string();
    if (!has_list) {
      pcr.add_event("unused_pcr_10", "IMA PCR in policy, but no measurement list provided", true);
    } else {
      ima::ProcessOptions opt;
      opt.bank = vq.hash_alg;
      opt.quoted_pcr10 = hex_decode(p10->second);
      opt.policy = st.runtime_policy ? st.runtime_policy : empty_compiled_policy();
      opt.tenant_keyring = st.tenant_keyring;
      if (mb_log.parsed) opt.boot_aggregates = all_boot_aggregates(*mb_log.parsed);
      opt.ignore_tomtou_errors = st.ignore_tomtou_errors;
      auto ima_result = ima::process_measurement_list(r["ima_measurement_list"].get_ref<const std::string&>(), opt,
                                                      &out.ima);
      out.ima_replayed = true;
      out.ima_matched = ima_result.replay.matched();
      pcr.merge(ima_result.failure);
    }
    // Upstream marks PCR 10 as used either way; without a matching replay an event above fails the round.
    done.insert(quote::kImaPcr);
  }

  // 4. Measured-boot PCRs against the replayed boot log (only with a usable, non-empty mb policy).
  const MbPolicyData* mbp = st.mb_policy.get();
  const bool mb_active = !mb_parse_failed && mbp && mbp->present && mbp->valid && mbp->nonempty;
  if (mb_active) {
    Failure mb_pcr(Component::measured_boot);
    std::set<std::uint32_t> to_check;
    for (auto n : mb::mb_pcrs_to_check(st.mb_policy_name))
      if (pcrs.count(n)) to_check.insert(n);
    const bool have_log = mb_list && !mb_list->empty();
    if (!have_log) {
      for (auto n : to_check)
        pcr.add_event("unused_pcr_" + std::to_string(n),
                      "Measured Boot PCR " + std::to_string(n) + " in policy, but no measurement list provided", true);
    } else {
      (void)mb::match_quoted_pcrs(mb_log.pcrs, pcrs, to_check, mb_pcr);
      for (auto n : to_check) {
        quote::check_pcr_allowed(n, pcrs.at(n), st.tpm_policy, pcr);
        done.insert(n);
      }
    }
    pcr.merge(mb_pcr);
  }

  // 5./6. Remaining PCRs against tpm_policy, then policy PCRs that were not quoted.
  quote::check_remaining_pcrs(pcrs, st.tpm_policy, pcr, done);
  quote::check_missing_pcrs(st.tpm_policy, done, pcr);

  // 7./8. The measured-boot policy itself, evaluated once (first attestation) or always.
  if (mbp && mbp->present && !mbp->text.empty() && !mbp->valid)
    pcr.add_event("invalid_mb_policy", "Invalid measured boot policy", true);
  if (mb_active && (st.mb_evaluate_always || st.attestation_count == 0)) {
    const json null_log;
    pcr.merge(mb::evaluate_boot_log(st.mb_policy_name, mbp->refstate, mb_log.parsed ? mb_log.parsed->data : null_log,
                                    done));
  }

  pcr.apply_severity_policy(severity);
  out.failure.merge(pcr);
  return out;
}

}  // namespace kl::verifier
