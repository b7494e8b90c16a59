// The part of main() both daemons share once their configuration is loaded: the command line front door,
// readiness/watchdog notifications, privilege drop, and the signal loop (stop on TERM/INT, reload on HUP).
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <spdlog/spdlog.h>

#include "common/service/daemon/command_line.hpp"
#include "common/service/daemon/sd_notify.hpp"
#include "common/service/daemon/signals.hpp"

namespace kl::daemon {

struct ProgramInfo {
  std::string name;          // "keylime_registrar"
  std::string synopsis;      // text printed before the common options in --help
  std::string version_line;  // printed by --version
  std::string notes;         // text printed after the common options in --help
};

// Parses argv. On --help/--version/a bad argument prints to `out`/`err` and sets `exit_code` (0 or 2), returning
// nullopt; otherwise returns the command line to run with.
std::optional<CommandLine> front_door(const ProgramInfo& info, int argc, char** argv, std::ostream& out,
                                      std::ostream& err, int& exit_code);

// What the signal loop calls.
struct Hooks {
  std::function<void()> reload;   // on SIGHUP (exceptions are logged, the service keeps running)
  std::function<bool()> healthy;  // before each watchdog ping; a false skips the ping so systemd restarts us
};

// Sends READY=1, then waits for signals, pinging the watchdog at half its period. SIGHUP runs hooks.reload
// between RELOADING=1 and READY=1. Returns the stopping signal (SIGTERM or SIGINT) after sending STOPPING=1.
int serve_until_stopped(ServiceSignals& signals, Notifier& notifier, const Hooks& hooks, spdlog::logger& log,
                        const std::string& ready_status);

// "SIGTERM", "SIGINT", "SIGHUP", else "signal N".
std::string signal_name(int sig);

}  // namespace kl::daemon
