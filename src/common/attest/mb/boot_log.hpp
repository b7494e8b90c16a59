// The verifier's entry point for a quote's mb_measurement_list (verification.md §5.3): decode, parse,
// replay and check the result the way Keylime's bootlog_parse does, with its failure ids under
// measured_boot.parser.*.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/mb/event_log.hpp"
#include "common/attest/mb/replay.hpp"
#include "common/attest/quote/failure.hpp"

namespace kl::mb {

struct ParsedBootLog {
  EventLog log;
  PcrBanks pcrs;
  nlohmann::json data;   // to_parsed_json(log, pcrs): what policies evaluate
};

// Binary log -> parsed + replayed. Throws kl::ParseError for a malformed log.
ParsedBootLog parse_boot_log(ByteView log_bytes, const ParseLimits& limits = {});

struct BootLogResult {
  Failure failure{Component::measured_boot, {"parser"}};
  std::optional<ParsedBootLog> parsed;  // set when a log was given and passed every check
  PcrBank pcrs;                         // the quote's bank (empty when no log or on failure)
};

// Keylime's bootlog_parse(mb_measurement_list, hash_alg):
//  * no list or "" -> nothing parsed, no event;
//  * base64 that does not decode -> throws kl::ParseError (Keylime raises; the verifier maps it to
//    internal.verifier.exception);
//  * a malformed binary log -> measured_boot.parser.tpm2_eventlog.error
//    {"context": "tpm2_eventlog exited with non-zero return code", "code": 1, "data": "<reason>"};
//  * no digests in the quote's bank -> measured_boot.parser.invalid_pcrs_hashes {"got": null};
//  * no boot aggregate computable -> measured_boot.parser.invalid_boot_aggregates {"got": {...}}.
// All events are recoverable, as upstream.
BootLogResult bootlog_parse(const std::optional<std::string>& mb_measurement_list_b64, crypto::HashAlg hash);

}  // namespace kl::mb
