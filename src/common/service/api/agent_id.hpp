// Agent identifiers as both services accept them.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace kl::api {

// Upstream's verifier rule (validators.valid_agent_id: one or more of [A-Za-z0-9_.-]) tightened by the
// project decision of wire-contract §2.5: at most 80 characters (the DB column is String(80)) and no "..",
// so an id can never act as a path component. Unlike Python's unicode-aware \w, only ASCII word characters
// are accepted: every real agent id is a UUID or a hostname.
bool valid_agent_id(std::string_view id);

}  // namespace kl::api

namespace kl::api {

// For log lines: control and non-ASCII bytes escaped as \xNN, cut at `max` characters, so a hostile id or
// path cannot forge or break log lines.
std::string printable_for_log(std::string_view text, std::size_t max = 120);

}  // namespace kl::api
