#include "common/attest/mb/boot_log.hpp"

#include "common/attest/mb/parsed.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::mb {

ParsedBootLog parse_boot_log(ByteView log_bytes, const ParseLimits& limits) {
  ParsedBootLog out;
  out.log = parse_event_log(log_bytes, limits);
  out.pcrs = replay_pcrs(out.log);
  out.data = to_parsed_json(out.log, out.pcrs);
  return out;
}

BootLogResult bootlog_parse(const std::optional<std::string>& b64, crypto::HashAlg hash) {
  BootLogResult r;
  if (!b64 || b64->empty()) return r;
  // Python's b64decode(validate=True) rejects anything outside the alphabet, newlines included; the agent
  // sends a single line. Keylime lets the error escape (internal.verifier.exception); so do we.
  auto bytes = base64_decode(*b64);
  if (!bytes) throw ParseError("mb_measurement_list is not valid base64");
  ParsedBootLog parsed;
  try {
    parsed = parse_boot_log(*bytes);
  } catch (const ParseError& e) {
    r.failure.add_event("tpm2_eventlog.error",
                        nlohmann::json{{"context", "tpm2_eventlog exited with non-zero return code"},
                                       {"code", 1},
                                       {"data", e.what()}},
                        true);
    return r;
  }
  const auto& pcrs = parsed.data["pcrs"];
  const std::string name(crypto::hash_name(hash));
  if (!pcrs.contains(name) || pcrs[name].empty()) {
    r.failure.add_event("invalid_pcrs_hashes", nlohmann::json{{"got", nullptr}}, true);
    return r;
  }
  const auto& aggregates = parsed.data["boot_aggregates"];
  // Keylime only checks that the dict is non-empty, which it is whenever a bank exists.
  if (aggregates.empty()) {
    r.failure.add_event("invalid_boot_aggregates", nlohmann::json{{"got", aggregates}}, true);
    return r;
  }
  r.pcrs = parsed.pcrs.at(hash);
  r.parsed = std::move(parsed);
  return r;
}

}  // namespace kl::mb
