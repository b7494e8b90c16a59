#include "common/attest/quote/tpm_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::quote {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Keys are all digits; anything longer than a few digits is certainly not a PCR (and must not overflow).
std::optional<std::uint32_t> pcr_number(std::string_view key) {
  if (!all_digits(key)) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : key) {
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (v > 1000) return std::nullopt;
  }
  return static_cast<std::uint32_t>(v);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::uint32_t mask_of_policy(const nlohmann::json& policy) {
  auto it = policy.find("mask");
  if (it == policy.end() || !it->is_string()) return 0;
  return parse_mask(it->get<std::string>()).value_or(0);
}

}  // namespace

std::string mask_hex(std::uint32_t mask) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", mask);
  return buf;
}

std::optional<std::uint32_t> parse_mask(std::string_view mask) {
  // Python int(text, 0): optional sign is not meaningful for a mask, so only 0x/0o/0b prefixes and
  // plain decimal (no leading zeros) are accepted; surrounding whitespace is tolerated like Python.
  while (!mask.empty() && std::isspace(static_cast<unsigned char>(mask.front()))) mask.remove_prefix(1);
  while (!mask.empty() && std::isspace(static_cast<unsigned char>(mask.back()))) mask.remove_suffix(1);
  if (mask.empty()) return std::nullopt;
  unsigned base = 10;
  if (mask.size() > 2 && mask[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(mask[1])));
    if (p == 'x') base = 16;
    else if (p == 'o') base = 8;
    else if (p == 'b') base = 2;
    if (base != 10) mask.remove_prefix(2);
  }
  if (base == 10 && mask.size() > 1 && mask[0] == '0') return std::nullopt;
  std::uint64_t v = 0;
  bool any = false;
  char prev = '_';
  for (char c : mask) {
    if (c == '_') {  // Python allows single underscores between digits
      if (prev == '_') return std::nullopt;
      prev = c;
      continue;
    }
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > 0xFFFFFFFFull) return std::nullopt;
    any = true;
    prev = c;
  }
  if (!any || prev == '_') return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

bool mask_has(std::string_view mask, std::uint32_t pcr) {
  auto m = parse_mask(mask);
  return m && pcr < 32 && ((*m >> pcr) & 1u);
}

nlohmann::json normalize_tpm_policy(const nlohmann::json& user_policy) {
  if (!user_policy.is_object()) throw ParseError("Invalid tpm policy: must be a JSON object");
  nlohmann::json out = nlohmann::json::object();
  std::uint32_t mask = 0;
  for (auto it = user_policy.begin(); it != user_policy.end(); ++it) {
    const std::string& key = it.key();
    auto pcr = pcr_number(key);
    if (!pcr || *pcr > 24) throw ParseError("Invalid tpm policy pcr number: " + key);
    if (*pcr == kDataPcr)
      throw ParseError("Invalid allowlist PCR number " + key + ", keylime uses this PCR to bind data.");
    if (*pcr == kImaPcr) throw ParseError("Invalid allowlist PCR number " + key + ", this PCR is used for IMA.");
    // PCR 24 passes Keylime's check but does not exist; it cannot be in a 32-bit mask issue either way.
    mask |= (*pcr < 32 ? (1u << *pcr) : 0u);

    nlohmann::json values = nlohmann::json::array();
    if (it->is_string()) {
      values.push_back(lower(it->get<std::string>()));
    } else if (it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_string()) throw ParseError("Invalid tpm policy: values of PCR " + key + " must be strings");
        values.push_back(lower(v.get<std::string>()));
      }
    } else {
      throw ParseError("Invalid tpm policy: PCR " + key + " needs a string or a list of strings");
    }
    out[key] = std::move(values);
  }
  out["mask"] = mask_hex(mask);
  return out;
}

void widen_mask(nlohmann::json& policy, MaskWidening widening) {
  if (!policy.is_object()) throw ParseError("Invalid tpm policy: must be a JSON object");
  auto enforce = [&](auto&& protected_pcrs, const char* use) {
    for (auto it = policy.begin(); it != policy.end(); ++it) {
      if (it.key() == "mask") continue;
      auto pcr = pcr_number(it.key());
      if (!pcr) continue;
      if (std::find(protected_pcrs.begin(), protected_pcrs.end(), *pcr) != protected_pcrs.end())
        throw ParseError("PCR " + it.key() + " is specified in \"tpm_policy\", but will in fact be used by " + use +
                         ". Please remove it from policy");
    }
  };
  std::uint32_t mask = mask_of_policy(policy);
  if (widening.ima) {
    enforce(std::array<std::uint32_t, 1>{kImaPcr}, "IMA");
    mask |= 1u << kImaPcr;
  }
  if (widening.measured_boot) {
    enforce(kMeasuredBootPcrs, "measured boot");
    for (auto p : kMeasuredBootPcrs) mask |= 1u << p;
  }
  policy["mask"] = mask_hex(mask);
}

TpmPolicy parse_tpm_policy(const nlohmann::json& policy) {
  TpmPolicy out;
  if (policy.is_null()) return out;
  if (policy.is_string()) return parse_tpm_policy_text(policy.get<std::string>());
  if (!policy.is_object()) throw ParseError("tpm_policy must be a JSON object");
  for (auto it = policy.begin(); it != policy.end(); ++it) {
    if (it.key() == "mask") {
      if (!it->is_string()) throw ParseError("tpm_policy: mask must be a string");
      out.mask = it->get<std::string>();
      continue;
    }
    auto pcr = pcr_number(it.key());
    if (!pcr) throw ParseError("tpm_policy: invalid PCR number '" + it.key() + "'");
    std::vector<std::string> values;
    // A bare string is treated as a one-element list (Keylime would do a substring test on it).
    if (it->is_string()) {
      values.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_string()) throw ParseError("tpm_policy: values of PCR " + it.key() + " must be strings");
        values.push_back(v.get<std::string>());
      }
    } else {
      throw ParseError("tpm_policy: PCR " + it.key() + " needs a string or a list of strings");
    }
    auto& slot = out.allowed[*pcr];
    slot.insert(slot.end(), values.begin(), values.end());
  }
  return out;
}

TpmPolicy parse_tpm_policy_text(std::string_view json_text) {
  if (json_text.empty()) return {};
  nlohmann::json j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (j.is_discarded()) throw ParseError("tpm_policy is not valid JSON");
  if (j.is_string()) throw ParseError("tpm_policy must be a JSON object");
  return parse_tpm_policy(j);
}

std::string expected_data_pcr(std::string_view pubkey_pem, crypto::HashAlg hash) {
  Bytes buf(crypto::digest_size(hash), 0);  // the PCR after reset
  const Bytes h = crypto::digest(hash, as_bytes(pubkey_pem));
  buf.insert(buf.end(), h.begin(), h.end());
  return hex_encode(crypto::digest(hash, buf));
}

void check_data_pcr(const PcrHex& pcrs, std::string_view pubkey_pem, crypto::HashAlg hash, Failure& failure,
                    std::set<std::uint32_t>& done) {
  auto it = pcrs.find(kDataPcr);
  if (it == pcrs.end()) {
    failure.add_event("missing_pcr_16", "Data PCR 16 is missing in quote, but is required", true);
    return;
  }
  const std::string expected = expected_data_pcr(pubkey_pem, hash);
  if (it->second != expected)
    failure.add_event("invalid_pcr_16", nlohmann::json{{"got", it->second}, {"expected", expected}}, true);
  done.insert(kDataPcr);
}

void check_pcr_allowed(std::uint32_t pcr, const std::string& value, const TpmPolicy& policy, Failure& failure) {
  auto it = policy.allowed.find(pcr);
  if (it == policy.allowed.end()) return;
  if (std::find(it->second.begin(), it->second.end(), value) != it->second.end()) return;
  failure.add_event("invalid_pcr_" + std::to_string(pcr),
                    nlohmann::json{{"context", "PCR value is not in allowlist"}, {"got", value}, {"expected", it->second}},
                    true);
}

void check_remaining_pcrs(const PcrHex& pcrs, const TpmPolicy& policy, Failure& failure,
                          std::set<std::uint32_t>& done) {
  for (const auto& [pcr, value] : pcrs) {  // std::map: ascending
    if (done.count(pcr)) continue;
    if (!policy.allowed.count(pcr)) continue;  // not in policy: ignored, and not marked as handled
    check_pcr_allowed(pcr, value, policy, failure);
    done.insert(pcr);
  }
}

void check_missing_pcrs(const TpmPolicy& policy, const std::set<std::uint32_t>& done, Failure& failure) {
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& [pcr, values] : policy.allowed)
    if (!done.count(pcr)) missing.push_back(pcr);
  if (!missing.empty())
    failure.add_event("missing_pcrs", nlohmann::json{{"context", "PCRs are missing in quote"}, {"data", missing}}, true);
}

Failure validate_tpm_policy(const PcrHex& pcrs, const TpmPolicy& policy, crypto::HashAlg hash,
                            const PcrPolicyInput& input) {
  Failure failure(Component::pcr_validation);
  std::set<std::uint32_t> done = input.handled;
  if (input.pubkey_pem) check_data_pcr(pcrs, *input.pubkey_pem, hash, failure, done);
  // A quoted PCR 10 always belongs to IMA, never to the allowlist (Keylime marks it handled either way).
  if (pcrs.count(kImaPcr) && !done.count(kImaPcr)) {
    if (input.pcr10_unused)
      failure.add_event("unused_pcr_10", "IMA PCR in policy, but no measurement list provided", true);
    done.insert(kImaPcr);
  }
  check_remaining_pcrs(pcrs, policy, failure, done);
  check_missing_pcrs(policy, done, failure);
  return failure;
}

}  // namespace kl::quote
