// Path matching and framework-level answers shared by both services' route tables (wire-contract §0.2, §0.3).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/service/http/message.hpp"

namespace kl::api {

// Which version prefixes a route is served under: none, /v2 and /v2.0../v2.6, /v3 and /v3.0, or both.
enum class Scope { unversioned, v2, v3, v2_and_v3 };

// "/v2.1/agents/x/" -> {"v2.1", "agents", "x"}: empty segments dropped, so a trailing "/" is tolerated.
std::vector<std::string_view> split_path(std::string_view path);

struct PathMatch {
  int major_version = 0;                         // 2 or 3 for versioned routes, 0 for unversioned ones
  std::string version;                           // "2.1", "2", "3.0" ... as written in the prefix
  std::map<std::string, std::string> captures;   // ":agent_id" -> segment, for every ":param" in the pattern
};
// Matches `segments` against `pattern` (e.g. "/agents/:agent_id") under `scope`'s version prefixes.
std::optional<PathMatch> match_path(Scope scope, std::string_view pattern,
                                    const std::vector<std::string_view>& segments);

// Methods the server knows at all; anything else is a 501 (§0.2).
bool known_http_method(const std::string& method);
// {"errors":[{"status","title","detail"}]}, the body of 401/403 answers (§0.2).
http::Response jsonapi_error(int status, const char* title, const std::string& detail);

}  // namespace kl::api
