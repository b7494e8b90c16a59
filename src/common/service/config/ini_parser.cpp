#include "common/service/config/ini_parser.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "common/service/config/config.hpp"

namespace kl::config {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n\f\v");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_comment(const std::string& trimmed) {
  return !trimmed.empty() && (trimmed[0] == '#' || trimmed[0] == ';');
}

}  // namespace

std::vector<IniEntry> parse_ini(const std::string& text, const std::string& origin) {
  std::vector<IniEntry> out;
  std::set<std::pair<std::string, std::string>> seen;
  std::string section;
  bool have_section = false;
  // Index into `out` of the option that indented lines continue; -1 when a blank line, comment or
  // section header ended it.
  long current = -1;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  auto fail = [&](const std::string& why) {
    throw ConfigError(origin + ":" + std::to_string(lineno) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string t = trim(line);
    if (t.empty()) {
      current = -1;
      continue;
    }
    if (is_comment(t)) continue;
    const bool indented = std::isspace(static_cast<unsigned char>(line[0])) != 0;
    if (indented && current >= 0) {
      out[static_cast<size_t>(current)].value += "\n" + t;
      continue;
    }
    if (t.front() == '[') {
      const auto close = t.find(']');
      if (close == std::string::npos || close == 1) fail("malformed section header");
      section = t.substr(1, close - 1);
      have_section = true;
      current = -1;
      continue;
    }
    const auto sep = t.find_first_of("=:");
    if (sep == std::string::npos || sep == 0) fail("expected 'key = value', got '" + t + "'");
    if (!have_section) fail("option '" + trim(t.substr(0, sep)) + "' appears before any [section]");
    IniEntry e{section, lower(trim(t.substr(0, sep))), trim(t.substr(sep + 1))};
    if (!seen.insert({e.section, e.key}).second) fail("option '" + e.key + "' in section [" + section + "] repeated");
    out.push_back(std::move(e));
    current = static_cast<long>(out.size()) - 1;
  }
  return out;
}

}  // namespace kl::config
