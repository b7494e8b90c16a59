// The Keylime REST API versions both services speak (upstream HEAD's keylime/api_version.py list).
#pragma once
#include <string>
#include <vector>

namespace kl::api {

// 1.0, 2.0 .. 2.6, 3.0. The tenant drops 3.x and negotiates the highest 2.x; the Rust agent uses
// current_version when it supports it.
const std::vector<std::string>& supported_api_versions();
const std::string& current_api_version();   // "2.6"

}  // namespace kl::api
