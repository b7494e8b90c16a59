// Input checks shared by the tenant-API handlers (common to both services).
#pragma once
#include "common/service/api/agent_id.hpp"
#include "common/service/api/strict_json.hpp"

namespace kl::verifier {

using api::parse_json_strict;
using api::printable_for_log;
using api::valid_agent_id;

}  // namespace kl::verifier
