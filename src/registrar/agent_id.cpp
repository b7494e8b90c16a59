#include "registrar/agent_id.hpp"

namespace kl::registrar {

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 80) return false;
  for (char c : id) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && c != '.' && c != '-') return false;
  }
  // "." and ".." would be path components; any ".." is refused outright (project decision).
  return id != "." && id.find("..") == std::string_view::npos;
}

}  // namespace kl::registrar
