// JSON request bodies, parsed once and strictly.
#pragma once
#include <string_view>

#include <nlohmann/json.hpp>

namespace kl::api {

// Parses `text` as one JSON document. Throws kl::ParseError on a syntax error and on an object that
// repeats a key at any depth: upstream keeps the last value, but two components that disagree on which
// duplicate wins are a parser-differential attack surface (wire-contract §2.5 project decision).
nlohmann::json parse_json_strict(std::string_view text);

}  // namespace kl::api
