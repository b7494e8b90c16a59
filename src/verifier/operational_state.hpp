// Upstream's operational states (keylime/common/states.py, wire-contract §3.7): numbers and display names.
#pragma once
#include <string_view>

namespace kl::verifier {

enum class State : int {
  registered = 0,
  start = 1,
  saved = 2,
  get_quote = 3,
  get_quote_retry = 4,
  provide_v = 5,
  provide_v_retry = 6,
  failed = 7,
  terminated = 8,
  invalid_quote = 9,
  tenant_failed = 10,
};

// "Registered", "Start", ..., "Tenant Quote Failed"; "Unknown" outside 0..10.
std::string_view state_name(int state);

// Pull mode: "PASS" for states 3-6, "FAIL" for 7, 9, 10, else "PENDING".
std::string_view attestation_status(int state);

// States in which polling is resumed on startup: START, GET_QUOTE, GET_QUOTE_RETRY, PROVIDE_V, PROVIDE_V_RETRY.
bool resumes_on_startup(int state);

// States in which DELETE removes the record at once: SAVED, FAILED, TENANT_FAILED, INVALID_QUOTE.
bool deletable_now(int state);

}  // namespace kl::verifier
