// The command line both daemons accept: -c/--config, --run-as, --help, --version.
// Parsing is kept apart from acting on it so tests can feed argument lists directly.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kl::daemon {

struct CommandLine {
  std::optional<std::filesystem::path> config_file;  // -c FILE / --config FILE / --config=FILE
  std::optional<std::string> run_as;                 // --run-as USER[:GROUP]
  bool help = false;
  bool version = false;
};

struct CommandLineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws CommandLineError naming the offending argument. argv[0] is not included in `args`.
CommandLine parse_command_line(const std::vector<std::string>& args);

// The options block shared by every daemon's --help text.
const char* common_options_help();

}  // namespace kl::daemon
