// Python's json.dumps() text for JSON values whose key order matters (upstream writes policies and
// reference states with json.dump/json.dumps defaults: ", " and ": " separators, ASCII escapes).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace kl::tools {

// Objects keep their insertion order (ordered_json).
std::string python_dumps(const nlohmann::ordered_json& value);

}  // namespace kl::tools
