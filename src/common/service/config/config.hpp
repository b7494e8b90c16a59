// Keylime-compatible configuration: one component's INI file (registrar.conf,
// verifier.conf, ...) found by upstream's search order, overlaid by its
// snippet directories and by KEYLIME_<COMP>_... environment variables, so an
// existing deployment's files and container env work unchanged.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kl::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};  // message names the key

// One component's configuration (registrar, verifier, tenant, ...), INI with sections, after upstream's
// search order, snippet directories (<comp>.conf.d, sorted) and KEYLIME_<COMP>_<OPTION> /
// KEYLIME_<COMP>_<SECTION>_<OPTION> environment overrides. Values have surrounding quotes/space stripped as upstream.
class Config {
 public:
  // explicit_file: from -c; otherwise KEYLIME_<COMP>_CONFIG, then /etc/keylime/<comp>.conf, /usr/etc/keylime/<comp>.conf.
  // Missing file is not an error (defaults apply) — log which file was used. `env` is injected (use environ by default).
  static Config load(const std::string& component, const std::optional<std::filesystem::path>& explicit_file,
                     const std::map<std::string, std::string>& env);
  static Config from_string(const std::string& component, const std::string& ini_text,
                            const std::map<std::string, std::string>& env = {});  // for tests
  std::optional<std::string> raw(const std::string& section, const std::string& key) const;
  std::string get(const std::string& section, const std::string& key, const std::string& fallback) const;
  long long get_int(const std::string& section, const std::string& key, long long fallback) const;  // ConfigError if not an int
  double get_float(const std::string& section, const std::string& key, double fallback) const;
  bool get_bool(const std::string& section, const std::string& key,
                bool fallback) const;  // True/False/yes/no/1/0/on/off, case-insensitive
  std::vector<std::string> get_list(const std::string& section, const std::string& key,
                                    const std::vector<std::string>& fallback) const;  // Python-literal list or comma list
  std::vector<std::filesystem::path> files_read() const;
  // Keys present in `section` that are not in `known` (for the "unknown key" warning).
  std::vector<std::string> unknown_keys(const std::string& section, const std::set<std::string>& known) const;

  // Same as load(), but with the system directories replaced (tests point them at a temp dir).
  // `roots` replaces {"/etc/keylime", "/usr/etc/keylime"} in that order of preference.
  static Config load_from_roots(const std::string& component, const std::optional<std::filesystem::path>& explicit_file,
                                const std::map<std::string, std::string>& env,
                                const std::vector<std::filesystem::path>& roots);

  const std::string& component() const { return component_; }

 private:
  using Section = std::map<std::string, std::string>;  // key (lower-case) -> value as written
  void merge_ini(const std::string& text, const std::string& origin);

  std::string component_;
  std::map<std::string, Section> sections_;  // section name (as written) -> keys
  std::map<std::string, std::string> env_;
  std::vector<std::filesystem::path> files_;
};

std::map<std::string, std::string> environment();                                  // snapshot of environ
std::filesystem::path keylime_dir(const std::map<std::string, std::string>& env);  // KEYLIME_DIR or /var/lib/keylime

}  // namespace kl::config
