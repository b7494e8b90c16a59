#include "common/attest/mb/text_codec.hpp"

#include <algorithm>

namespace kl::mb::detail {
namespace {

bool valid_utf8(ByteView b) {
  std::size_t i = 0;
  while (i < b.size()) {
    std::uint8_t c = b[i];
    std::size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 99;
    if (n == 99 || (n == 1 && c < 0xC2)) return false;
    if (n > 0 && i + n >= b.size()) return false;
    for (std::size_t k = 1; k <= n; ++k)
      if ((b[i + k] & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

std::string to_json_text(ByteView bytes) {
  if (valid_utf8(bytes)) return as_string(bytes);
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t c : bytes) append_utf8(out, c);
  return out;
}

std::string utf16le_to_utf8(ByteView bytes, std::size_t units, bool stop_at_nul) {
  std::string out;
  units = std::min(units, bytes.size() / 2);
  for (std::size_t i = 0; i < units; ++i) {
    std::uint32_t u = le16(bytes.data() + 2 * i);
    if (u == 0 && stop_at_nul) break;
    if (u >= 0xD800 && u < 0xDC00 && i + 1 < units) {
      std::uint32_t lo = le16(bytes.data() + 2 * (i + 1));
      if (lo >= 0xDC00 && lo < 0xE000) {
        append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        ++i;
        continue;
      }
    }
    if (u >= 0xD800 && u < 0xE000) u = 0xFFFD;  // lone surrogate: not representable in UTF-8
    append_utf8(out, u);
  }
  return out;
}

std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint64_t le64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(le32(p)) | (static_cast<std::uint64_t>(le32(p + 4)) << 32);
}

}  // namespace kl::mb::detail
