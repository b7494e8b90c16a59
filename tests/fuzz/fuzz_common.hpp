// Shared by the libFuzzer targets: input views and the rule for which exceptions count as a clean rejection.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"

namespace klfuzz {

inline kl::ByteView bytes(const std::uint8_t* data, std::size_t size) { return {data, size}; }
inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `f`. The exceptions our parsers document for bad input (kl::ParseError and other std::runtime_error,
// std::invalid_argument, nlohmann::json::exception) are a clean rejection and return false. Anything else
// (std::out_of_range, std::length_error, std::bad_alloc, logic errors) escapes, and libFuzzer reports it as
// a crash: those reach a request handler as a 500.
template <class F>
bool parses(F&& f) {
  try {
    f();
    return true;
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  } catch (const nlohmann::json::exception&) {
  }
  return false;
}

// Non-strict JSON parse without exceptions; nullopt-like discarded value on error.
inline nlohmann::json json_or_discarded(const std::uint8_t* data, std::size_t size) {
  return nlohmann::json::parse(data, data + size, nullptr, false);
}

}  // namespace klfuzz
