// A reader for the INI dialect of Python's RawConfigParser (what upstream
// Keylime's config files are written in): `[section]`, `key = value` or
// `key: value`, full-line `#`/`;` comments, indented continuation lines,
// option names case-insensitive, no interpolation.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kl::config {

struct IniEntry {
  std::string section;  // as written (section names are case-sensitive)
  std::string key;      // lower-cased, as RawConfigParser's optionxform does
  std::string value;    // surrounding whitespace removed; continuation lines joined with '\n'
};

// Throws ConfigError (naming `origin` and the line) on a line that is neither a section, an option nor a
// comment, on an option before any section, and on a key repeated within one section of the same text
// (RawConfigParser's strict mode rejects such a file; we refuse it loudly instead of ignoring it).
std::vector<IniEntry> parse_ini(const std::string& text, const std::string& origin);

}  // namespace kl::config
