// Python re.fullmatch semantics on PCRE2 (which, unlike std::regex, accepts Python's escapes such as "\ "
// and "\-" that re.escape produces in reference states). Internal to mb/.
#pragma once
#include <memory>
#include <string>
#include <string_view>

namespace kl::mb::detail {

class FullMatch {
 public:
  // Throws std::invalid_argument for a pattern PCRE2 cannot compile.
  explicit FullMatch(std::string pattern, bool dotall = false);
  bool matches(std::string_view subject) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::shared_ptr<const Code> code_;
};

}  // namespace kl::mb::detail
