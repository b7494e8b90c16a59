// A small argparse-like command-line parser for one (sub)command: short/long options, flags,
// values, optional values (nargs="?"), repeatable options, choices, required options and --help.
// Errors follow argparse's shape ("usage: ...", "<prog>: error: ...", exit status 2).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kl::tools {

struct OptionSpec {
  enum class Kind { flag, value, optional_value, append };
  std::string short_name;  // "-m" or empty
  std::string long_name;   // "--ima-measurement-list"
  std::string dest;        // key the parsed value is stored under
  Kind kind = Kind::value;
  std::string metavar;     // shown in help for options taking a value
  std::string help;
  bool required = false;
  std::vector<std::string> choices;  // empty = any value
};

OptionSpec option(std::string short_name, std::string long_name, std::string dest, OptionSpec::Kind kind,
                  std::string metavar, std::string help, bool required = false, std::vector<std::string> choices = {});

struct ParsedArgs {
  bool help = false;
  std::string error;  // non-empty: the parse failed (message without prefix)
  std::map<std::string, std::string> values;               // value / optional_value ("" = given bare)
  std::map<std::string, std::vector<std::string>> lists;   // append
  std::map<std::string, bool> flags;

  bool flag(const std::string& dest) const;
  bool has(const std::string& dest) const { return values.count(dest) != 0; }
  std::string value(const std::string& dest, const std::string& fallback = "") const;
  std::vector<std::string> list(const std::string& dest) const;
};

class ArgParser {
 public:
  ArgParser(std::string prog, std::string description) : prog_(std::move(prog)), description_(std::move(description)) {}
  void add(OptionSpec spec) { specs_.push_back(std::move(spec)); }
  ParsedArgs parse(const std::vector<std::string>& args) const;
  std::string usage() const;
  std::string help() const;
  const std::string& prog() const { return prog_; }

 private:
  const OptionSpec* find(const std::string& name) const;
  std::string prog_, description_;
  std::vector<OptionSpec> specs_;
};

// Prints help (exit 0) or usage + error (exit 2) when `parsed` asks for it; nullopt to go on.
std::optional<int> handle_help_or_error(const ArgParser& parser, const ParsedArgs& parsed);

}  // namespace kl::tools
