// Malformed input at a parser boundary. Never carries a verification verdict:
// callers at the HTTP edge map it to a 4xx JSON error.
#pragma once
#include <stdexcept>
#include <string>

namespace kl {

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace kl
