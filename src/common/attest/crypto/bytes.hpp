// Byte buffers and the text encodings Keylime uses for binary fields.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kl {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string as_string(ByteView b) { return {b.begin(), b.end()}; }

// Standard alphabet, with padding.
std::string base64_encode(ByteView data);
// Strict: standard alphabet, correct padding, no whitespace. nullopt on any error.
std::optional<Bytes> base64_decode(std::string_view text);
// Lenient for PEM bodies: ignores whitespace/newlines, otherwise strict.
std::optional<Bytes> base64_decode_ignoring_whitespace(std::string_view text);

std::string hex_encode(ByteView data);  // lowercase
// Accepts upper/lower case, optional "0x" prefix; even length required.
std::optional<Bytes> hex_decode(std::string_view text);

// Constant-time equality for secrets (HMAC tags).
bool constant_time_equal(ByteView a, ByteView b);

}  // namespace kl
