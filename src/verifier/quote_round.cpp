#include "verifier/quote_round.hpp"

#include "common/attest/crypto/digest.hpp"
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

}  // namespace

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
  out.boottime = st.boottime;
  out.next_ima_ml_entry = st.next_ima_ml_entry;

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

  // IMA offset and reboot tracking (§0 step 3.5).
  if (*entry == 0) {
    out.next_ima_ml_entry = 0;
  } else if (*entry != st.next_ima_ml_entry) {
    out.failure.add_event("invalid_ima_entry_nb",
                          {{"message", "IMA entry number mismatch"}, {"got", *entry}, {"expected", st.next_ima_ml_entry}},
                          false);
  } else if (*boottime != st.boottime) {
    out.next_ima_ml_entry = 0;
    out.boottime = *boottime;
    out.inconclusive = true;
    return out;
  }
  out.boottime = *boottime;

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

  // check_pcrs (IMA / measured boot evaluation are separate issues).
  const auto pcrs = quote::pcrs_hex(vq.pcrs);
  quote::PcrPolicyInput input;
  input.pubkey_pem = out.pubkey;
  const bool has_ima_list = r.contains("ima_measurement_list") && r["ima_measurement_list"].is_string();
  if (pcrs.count(quote::kImaPcr)) {
    if (has_ima_list)
      input.handled.insert(quote::kImaPcr);
    else
      input.pcr10_unused = true;
  }
  Failure pcr = quote::validate_tpm_policy(pcrs, st.tpm_policy, vq.hash_alg, input);
  pcr.apply_severity_policy(severity);
  out.failure.merge(pcr);
  if (!out.failure.failed() && has_ima_list && (*entry == 0 || *entry == st.next_ima_ml_entry)) {
    // Count the lines handed over so the next request asks for the following entry.
    const std::string& list = r["ima_measurement_list"].get_ref<const std::string&>();
    long long lines = 0;
    for (char c : list) lines += c == '\n';
    if (!list.empty() && list.back() != '\n') ++lines;
    out.next_ima_ml_entry = *entry + lines;
  }
  return out;
}

}  // namespace kl::verifier
