#include "common/service/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include <spdlog/spdlog.h>

#include "common/service/config/ini_parser.hpp"
#include "common/service/config/list_value.hpp"

extern char** environ;

namespace kl::config {
namespace fs = std::filesystem;

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Upstream strips with str.strip('" '): double quotes and spaces at both ends, in any mix.
std::string strip_quotes(const std::string& s) {
  const auto b = s.find_first_not_of("\" ");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of("\" ");
  return s.substr(b, e - b + 1);
}

std::string trim_space(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw ConfigError("cannot read configuration file " + p.string() + " (check its permissions)");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool is_regular(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

const std::vector<fs::path>& system_roots() {
  static const std::vector<fs::path> roots{"/etc/keylime", "/usr/etc/keylime"};
  return roots;
}

}  // namespace

void Config::merge_ini(const std::string& text, const std::string& origin) {
  for (auto& e : parse_ini(text, origin)) sections_[e.section][e.key] = std::move(e.value);
}

Config Config::from_string(const std::string& component, const std::string& ini_text,
                           const std::map<std::string, std::string>& env) {
  Config c;
  c.component_ = component;
  c.env_ = env;
  c.merge_ini(ini_text, "<" + component + " config text>");
  return c;
}

Config Config::load(const std::string& component, const std::optional<fs::path>& explicit_file,
                    const std::map<std::string, std::string>& env) {
  return load_from_roots(component, explicit_file, env, system_roots());
}

Config Config::load_from_roots(const std::string& component, const std::optional<fs::path>& explicit_file,
                               const std::map<std::string, std::string>& env, const std::vector<fs::path>& roots) {
  Config c;
  c.component_ = component;
  c.env_ = env;
  auto read_one = [&c](const fs::path& p) {
    c.merge_ini(read_file(p), p.string());
    c.files_.push_back(p);
  };

  // An explicitly named file (-c, or KEYLIME_<COMP>_CONFIG as upstream) is the whole configuration:
  // neither the installed file nor snippets are mixed in, so what the operator named is what runs.
  if (explicit_file) {
    if (!is_regular(*explicit_file))
      throw ConfigError("configuration file " + explicit_file->string() + " given for " + component +
                        " does not exist or is not a file");
    read_one(*explicit_file);
    spdlog::info("Reading {} configuration from {}", component, explicit_file->string());
    return c;
  }
  const std::string env_var = "KEYLIME_" + upper(component) + "_CONFIG";
  if (auto it = env.find(env_var); it != env.end() && !it->second.empty()) {
    if (is_regular(it->second)) {
      read_one(it->second);
      spdlog::info("Reading {} configuration from {} (set by {})", component, it->second, env_var);
      return c;
    }
    spdlog::info("Configuration file {} for {} set through {} not found, falling back to installed configuration",
                 it->second, component, env_var);
  }

  // The first installed base file wins (roots are in order of preference: /etc before /usr/etc).
  bool found = false;
  for (const auto& root : roots) {
    const fs::path p = root / (component + ".conf");
    if (is_regular(p)) {
      read_one(p);
      found = true;
      spdlog::info("Reading {} configuration from {}", component, p.string());
      break;
    }
  }
  if (!found) {
    spdlog::warn("No configuration file for {} found in the system directories; using defaults", component);
    return c;
  }
  // Snippets override the base file, vendor directory first so the admin's (/etc) has the last word;
  // within a directory files apply in sorted name order. Upstream applies them only with a base file.
  for (auto r = roots.rbegin(); r != roots.rend(); ++r) {
    const fs::path dir = *r / (component + ".conf.d");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> snippets;
    for (const auto& de : fs::directory_iterator(dir, ec))
      if (is_regular(de.path())) snippets.push_back(de.path());
    std::sort(snippets.begin(), snippets.end());
    for (const auto& s : snippets) read_one(s);
    if (!snippets.empty()) spdlog::info("Applied {} configuration snippets from {}", component, dir.string());
  }
  return c;
}

std::optional<std::string> Config::raw(const std::string& section, const std::string& key) const {
  const std::string k = lower(key);
  // Options of the component's own section are overridden by KEYLIME_<COMP>_<OPTION>; options of
  // other sections (e.g. [revocations] in verifier.conf) by KEYLIME_<COMP>_<SECTION>_<OPTION>.
  const std::string env_name = section == component_
                                   ? "KEYLIME_" + upper(component_) + "_" + upper(k)
                                   : "KEYLIME_" + upper(component_) + "_" + upper(section) + "_" + upper(k);
  if (auto it = env_.find(env_name); it != env_.end()) return strip_quotes(it->second);
  if (auto s = sections_.find(section); s != sections_.end())
    if (auto v = s->second.find(k); v != s->second.end()) return strip_quotes(v->second);
  // RawConfigParser's [DEFAULT] section supplies fallbacks to every section.
  if (auto s = sections_.find("DEFAULT"); s != sections_.end())
    if (auto v = s->second.find(k); v != s->second.end()) return strip_quotes(v->second);
  return std::nullopt;
}

std::string Config::get(const std::string& section, const std::string& key, const std::string& fallback) const {
  return raw(section, key).value_or(fallback);
}

long long Config::get_int(const std::string& section, const std::string& key, long long fallback) const {
  const auto v = raw(section, key);
  if (!v) return fallback;
  // Python's int(): optional sign, digits, single underscores between digits, surrounding whitespace.
  std::string digits;
  const std::string t = trim_space(*v);
  size_t i = 0;
  bool neg = false;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
  bool ok = i < t.size();
  for (; i < t.size() && ok; ++i) {
    if (std::isdigit(static_cast<unsigned char>(t[i])))
      digits += t[i];
    else if (t[i] == '_' && !digits.empty() && i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i + 1])))
      continue;
    else
      ok = false;
  }
  if (ok && !digits.empty()) {
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(digits.c_str(), &end, 10);
    if (errno != ERANGE && *end == '\0') return neg ? -n : n;
  }
  throw ConfigError(component_ + ": option '" + key + "' in section [" + section + "] must be an integer, got '" +
                    *v + "'");
}

double Config::get_float(const std::string& section, const std::string& key, double fallback) const {
  const auto v = raw(section, key);
  if (!v) return fallback;
  const std::string t = trim_space(*v);
  if (!t.empty()) {
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(t.c_str(), &end);
    if (errno != ERANGE && end == t.c_str() + t.size()) return d;
  }
  throw ConfigError(component_ + ": option '" + key + "' in section [" + section + "] must be a number, got '" +
                    *v + "'");
}

bool Config::get_bool(const std::string& section, const std::string& key, bool fallback) const {
  const auto v = raw(section, key);
  if (!v) return fallback;
  const std::string t = lower(trim_space(*v));
  if (t == "1" || t == "yes" || t == "true" || t == "on") return true;
  if (t == "0" || t == "no" || t == "false" || t == "off") return false;
  throw ConfigError(component_ + ": option '" + key + "' in section [" + section +
                    "] must be a boolean (true/false, yes/no, on/off, 1/0), got '" + *v + "'");
}

std::vector<std::string> Config::get_list(const std::string& section, const std::string& key,
                                          const std::vector<std::string>& fallback) const {
  const auto v = raw(section, key);
  if (!v) return fallback;
  try {
    return parse_list_value(*v);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(component_ + ": option '" + key + "' in section [" + section + "] is not a list (" + e.what() +
                      "): '" + *v + "'");
  }
}

std::vector<fs::path> Config::files_read() const { return files_; }

std::vector<std::string> Config::unknown_keys(const std::string& section, const std::set<std::string>& known) const {
  std::vector<std::string> out;
  auto s = sections_.find(section);
  if (s == sections_.end()) return out;
  for (const auto& [k, v] : s->second)
    if (!known.count(k)) out.push_back(k);
  return out;  // map order: sorted
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    out.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

fs::path keylime_dir(const std::map<std::string, std::string>& env) {
  if (auto it = env.find("KEYLIME_DIR"); it != env.end() && !it->second.empty()) return it->second;
  return "/var/lib/keylime";
}

}  // namespace kl::config
