// TPM clock information across consecutive quotes (verification.md §1.7), and its persisted form.
//
// Deliberate differences from Keylime (project quirk policy: do the right check):
//  * a reboot (resetCount grew) may bring restartCount back to any value; Keylime rejects it
//    ("restartCount value decreased") unless the previous restartCount was 0;
//  * the clock must grow in every case (with safe == 1 the TPM guarantees it never reported a larger
//    value) and the stored state always advances; Keylime skips the clock check and keeps the old state
//    when both counters changed.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/attest/quote/failure.hpp"
#include "common/attest/tpm/attest.hpp"

namespace kl::quote {

// Keylime's initial state {clock 0, resetCount 0, restartCount 0, safe 1}.
tpm::ClockInfo initial_clock_info();

struct ClockCheck {
  std::string error;                     // empty = accepted; else Keylime's reason text
  std::optional<tpm::ClockInfo> update;  // the state to persist when accepted
  bool ok() const { return error.empty(); }
};

ClockCheck check_clock(const tpm::ClockInfo& previous, const tpm::ClockInfo& current);

// qoute_validation.quote_validation {"message": "Validation of clockinfo from quote using tpm2-tools",
// "data": <reason>}, irrecoverable.
Failure clock_failure(std::string_view reason);

// Agent column `tpm_clockinfo`: {"clock": int, "resetCount": int, "restartCount": int, "safe": 0|1}.
nlohmann::json clock_info_to_json(const tpm::ClockInfo&);
tpm::ClockInfo clock_info_from_json(const nlohmann::json&);  // throws kl::ParseError (safe may be bool or int)

}  // namespace kl::quote
