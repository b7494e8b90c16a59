#include "common/service/daemon/command_line.hpp"

#include <stdexcept>

namespace kl::daemon {

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine cl;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& opt) -> std::string {
      if (i + 1 >= args.size()) throw CommandLineError("option '" + opt + "' needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      cl.help = true;
    } else if (a == "-v" || a == "--version") {
      cl.version = true;
    } else if (a == "-c" || a == "--config") {
      cl.config_file = value(a);
    } else if (a.rfind("--config=", 0) == 0) {
      cl.config_file = a.substr(9);
    } else if (a == "--run-as") {
      cl.run_as = value(a);
    } else if (a.rfind("--run-as=", 0) == 0) {
      cl.run_as = a.substr(9);
    } else {
      throw CommandLineError("unknown argument '" + a + "'");
    }
  }
  if (cl.config_file && cl.config_file->empty()) throw CommandLineError("option '--config' needs a value");
  return cl;
}

const char* common_options_help() {
  return "Options:\n"
         "  -c, --config FILE     read the configuration from FILE instead of the search path\n"
         "      --run-as USER[:GROUP]\n"
         "                        when started as root, switch to USER (and GROUP) after the ports are\n"
         "                        bound; overrides the run_as option of the configuration file\n"
         "  -h, --help            show this help and exit\n"
         "  -v, --version         show the version and exit\n"
         "\n"
         "Signals: SIGTERM/SIGINT finish the requests in flight and exit 0; SIGHUP re-reads the log level\n"
         "and the server certificates without dropping agents.\n"
         "Under systemd (Type=notify) READY=1 is sent once the ports are bound, and WATCHDOG=1 every\n"
         "WatchdogSec/2. Logging: KEYLIME_LOG_LEVEL (or logging.conf [logger_keylime] level), KEYLIME_LOG_FORMAT\n"
         "= text | json.\n";
}

}  // namespace kl::daemon
