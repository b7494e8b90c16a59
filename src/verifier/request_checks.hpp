// Input checks shared by the tenant-API handlers. These duplicate src/registrar/{strict_json,agent_id} because
// kl_verifier_core does not link kl_registrar_core; the lead is asked to move them to src/common.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kl::verifier {

// One JSON document; throws kl::ParseError on a syntax error or a repeated key at any depth.
nlohmann::json parse_json_strict(std::string_view text);

// [A-Za-z0-9_.-]{1,80}, not "." and without "..": upstream's valid_agent_id tightened as the registrar does.
bool valid_agent_id(std::string_view id);

// Control / non-ASCII bytes escaped as \xNN and cut at `max` characters, for log lines.
std::string printable_for_log(std::string_view text, std::size_t max = 120);

}  // namespace kl::verifier
