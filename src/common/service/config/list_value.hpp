// Parsing of list-valued options. Upstream writes lists as Python literals
// (`['agent', 'webhook']`, `[{"event_id": ".*", ...}]`) and a few as comma
// lists (`ek_tpm,aik_tpm,ekcert`); both forms are accepted here.
#pragma once

#include <string>
#include <vector>

namespace kl::config {

// `text` has already had surrounding quotes/space stripped. "[...]" is read as a Python literal list:
// quoted strings are unquoted (with \-escapes), bare words/numbers kept as written, nested {...}/[...]
// items returned as their source text. Anything else is split on commas. Every item is trimmed; empty
// text gives an empty list. Throws std::invalid_argument on an unterminated string or bracket.
std::vector<std::string> parse_list_value(const std::string& text);

}  // namespace kl::config
