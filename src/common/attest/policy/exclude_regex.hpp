// Exclude list matching with Python `re.match` semantics (verification.md §4.4): all excludes are
// joined as "(r1)|(r2)|..." and matched anchored at the start of the path, prefix allowed.
// Compiled once (PCRE2, JIT when available) and shared read-only between threads.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kl::policy {

class ExcludeRegex {
 public:
  // Throws std::invalid_argument("Invalid regex: <reason>.") for a pattern Python would reject
  // or PCRE2 cannot compile. An empty list compiles to a matcher that matches nothing.
  explicit ExcludeRegex(const std::vector<std::string>& excludes);
  ~ExcludeRegex();
  ExcludeRegex(const ExcludeRegex&) = delete;
  ExcludeRegex& operator=(const ExcludeRegex&) = delete;

  bool empty() const { return code_ == nullptr; }
  bool matches(std::string_view path) const;  // re.match(combined, path) is not None

  // Per-thread match memory, so a loop over many paths allocates once.
  class Scratch {
   public:
    Scratch();
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    void* get() const { return md_; }

   private:
    void* md_;  // pcre2_match_data_8*
  };
  bool matches(std::string_view path, Scratch& scratch) const;
  const std::string& pattern() const { return pattern_; }  // the combined Python pattern

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*, kept out of the header
};

// Python -> PCRE2 pattern translation for the constructs whose meaning differs (\Z -> \z,
// (?P=name) kept, \d/\w Unicode-aware via PCRE2_UCP). Exposed for tests.
std::string python_to_pcre2(std::string_view python_pattern);

}  // namespace kl::policy
