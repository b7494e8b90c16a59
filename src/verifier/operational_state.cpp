#include "verifier/operational_state.hpp"

namespace kl::verifier {

std::string_view state_name(int state) {
  static constexpr std::string_view names[] = {"Registered", "Start", "Saved", "Get Quote", "Get Quote (retry)",
                                               "Provide V", "Provide V (retry)", "Failed", "Terminated",
                                               "Invalid Quote", "Tenant Quote Failed"};
  if (state < 0 || state > 10) return "Unknown";
  return names[state];
}

std::string_view attestation_status(int state) {
  if (state >= 3 && state <= 6) return "PASS";
  if (state == 7 || state == 9 || state == 10) return "FAIL";
  return "PENDING";
}

bool resumes_on_startup(int state) { return state == 1 || (state >= 3 && state <= 6); }

bool deletable_now(int state) { return state == 2 || state == 7 || state == 9 || state == 10; }

}  // namespace kl::verifier
