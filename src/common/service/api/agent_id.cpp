#include "common/service/api/agent_id.hpp"

namespace kl::api {

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 80) return false;
  for (char c : id) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && c != '.' && c != '-') return false;
  }
  // "." and ".." would be path components; any ".." is refused outright (project decision).
  return id != "." && id.find("..") == std::string_view::npos;
}

}  // namespace kl::api

namespace kl::api {

std::string printable_for_log(std::string_view text, std::size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace kl::api
