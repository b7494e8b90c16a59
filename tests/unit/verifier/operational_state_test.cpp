#include <catch2/catch.hpp>

#include "verifier/operational_state.hpp"

using namespace kl::verifier;

TEST_CASE("operational states: upstream numbers, names and attestation_status") {
  CHECK(static_cast<int>(State::invalid_quote) == 9);
  CHECK(state_name(4) == "Get Quote (retry)");
  CHECK(state_name(10) == "Tenant Quote Failed");
  CHECK(state_name(11) == "Unknown");
  CHECK(attestation_status(3) == "PASS");
  CHECK(attestation_status(6) == "PASS");
  CHECK(attestation_status(7) == "FAIL");
  CHECK(attestation_status(9) == "FAIL");
  CHECK(attestation_status(10) == "FAIL");
  CHECK(attestation_status(1) == "PENDING");
  CHECK(attestation_status(8) == "PENDING");
  CHECK(resumes_on_startup(1));
  CHECK(resumes_on_startup(4));
  CHECK_FALSE(resumes_on_startup(7));
  CHECK_FALSE(resumes_on_startup(10));
  CHECK(deletable_now(9));
  CHECK_FALSE(deletable_now(3));
}
