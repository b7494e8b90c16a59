// The tool's log on stderr, shaped like upstream keylime-policy's: the bare message normally;
// with -v/--verbose debug messages too, as "<date time.ms> - keylime-policy - LEVEL - message".
#pragma once
#include <string_view>

namespace kl::tools {

class ToolLog {
 public:
  explicit ToolLog(bool verbose = false) : verbose_(verbose) {}
  void set_verbose(bool v) { verbose_ = v; }
  bool verbose() const { return verbose_; }

  void debug(std::string_view msg) const;
  void info(std::string_view msg) const;
  void warning(std::string_view msg) const;
  void error(std::string_view msg) const;

 private:
  void write(std::string_view level, std::string_view msg) const;
  bool verbose_;
};

}  // namespace kl::tools
