// Measured-boot reference-state policies (verification.md §5.4): the named policy engines Keylime ships
// ("accept-all", "reject-all", "example") and Keylime's bootlog_evaluate around them. A policy evaluates a
// reference state (upstream's JSON format) against the parsed log of parsed.hpp and returns "" to accept or
// the reason for rejection, in the words of upstream's test tree.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/quote/failure.hpp"

namespace kl::mb {

class BootPolicy {
 public:
  virtual ~BootPolicy() = default;
  virtual std::string_view name() const = 0;
  // The PCRs the policy needs in the quote; empty = no restriction (accept-all, reject-all).
  virtual std::set<std::uint32_t> relevant_pcrs() const = 0;
  // Checks the reference state's shape; throws std::invalid_argument with upstream's message if malformed.
  virtual void check_refstate(const nlohmann::json& refstate) const = 0;
  // "" = the log satisfies the reference state. A malformed refstate throws std::invalid_argument.
  virtual std::string evaluate(const nlohmann::json& refstate, const nlohmann::json& parsed_log) const = 0;
};

// Built-in policies by name; nullptr for an unknown name. The returned policies are immutable singletons.
const BootPolicy* find_policy(std::string_view name);
std::vector<std::string> policy_names();

// Keylime's MEASUREDBOOT_PCRS: 0-9 and 11-15.
std::set<std::uint32_t> measured_boot_pcrs();

// PCRs to replay and compare for a policy: measured_boot_pcrs() intersected with the policy's relevant PCRs
// (all of them when the policy names none or is unknown).
std::set<std::uint32_t> mb_pcrs_to_check(std::string_view policy_name);

// Keylime's policy_is_valid: non-empty text that parses as JSON and is not null ({} is valid: accept-all).
bool refstate_is_valid(std::string_view refstate_text);

// Keylime's bootlog_evaluate (component measured_boot):
//  * no refstate / "" / a refstate that is {} -> no event;
//  * unknown policy name -> evaluated as "reject-all";
//  * policy PCRs missing from pcrs_in_quote -> measured_boot.missing_pcrs
//    {"context": "PCRs are missing in quote", "data": [...]};
//  * a reason -> measured_boot.policy_<name> {"context": "Boot attestation failed", "policy", "refstate"
//    (Python str() of the refstate), "reason"}; a malformed refstate gives the reason
//    "policy evaluation failed: <message>". All recoverable.
// Throws kl::ParseError if refstate_text is not JSON (upstream raises there as well).
Failure evaluate_boot_log(std::string_view policy_name, std::string_view refstate_text,
                          const nlohmann::json& parsed_log, const std::set<std::uint32_t>& pcrs_in_quote);

// A reference state parsed once (at upload or first use) and evaluated against every quote.
struct Refstate {
  nlohmann::json value;
  std::string text;  // as stored: reproduced (Python str()) in failure contexts
};
// Throws kl::ParseError if the text is not JSON. "" gives a null value (no refstate).
Refstate parse_refstate(std::string_view refstate_text);
Failure evaluate_boot_log(std::string_view policy_name, const Refstate& refstate, const nlohmann::json& parsed_log,
                          const std::set<std::uint32_t>& pcrs_in_quote);

// Python's str() of JSON data ({'a': [1, True, None]}), as Keylime puts the refstate into event contexts.
std::string python_repr(const nlohmann::json& value);

}  // namespace kl::mb
