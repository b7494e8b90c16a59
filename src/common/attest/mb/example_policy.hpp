// Upstream's "example" measured-boot policy (keylime/mba/elchecking/example.py), internal to mb/: builds the
// test tree for one reference state. Throws std::invalid_argument with upstream's message for a malformed
// reference state.
#pragma once
#include <nlohmann/json.hpp>

#include "common/attest/mb/test_tree.hpp"

namespace kl::mb::detail {

tree::TestPtr example_refstate_to_test(const nlohmann::json& refstate);

// Python truthiness of a JSON value (None, False, 0, "", [] and {} are false).
bool truthy(const nlohmann::json& v);

}  // namespace kl::mb::detail
