// Python repr()/ascii() spellings of JSON data, so that policy reasons and event contexts read exactly like
// Keylime's. Internal to mb/ (policy.hpp exposes python_repr for json).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kl::mb::detail {

// 'text' with Python's quoting choice and ascii() escapes.
std::string repr_str(std::string_view s);
// Tuple of strings: ('a', 'b') / ('a',).
std::string repr_str_tuple(const std::vector<std::string>& items);
// Set of strings in the given order: {'a', 'b'}; set() when empty.
std::string repr_str_set(const std::vector<std::string>& items);
// Objects keep the order of an ordered_json (a refstate as the user wrote it).
std::string repr(const nlohmann::ordered_json& v);
// Objects of a parsed log come out in tpm2_eventlog's field order (EventNum, PCRIndex, EventType, ...).
std::string repr(const nlohmann::json& v);
// "<class 'str'>" for the Python type the JSON value would load as.
std::string python_type(const nlohmann::json& v);

}  // namespace kl::mb::detail
