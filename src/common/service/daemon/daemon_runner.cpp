#include "common/service/daemon/daemon_runner.hpp"

#include <csignal>

namespace kl::daemon {

std::optional<CommandLine> front_door(const ProgramInfo& info, int argc, char** argv, std::ostream& out,
                                      std::ostream& err, int& exit_code) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto usage = [&](std::ostream& os) { os << info.synopsis << "\n" << common_options_help() << info.notes; };
  try {
    CommandLine cl = parse_command_line(args);
    if (cl.help) {
      usage(out);
      exit_code = 0;
      return std::nullopt;
    }
    if (cl.version) {
      out << info.version_line << "\n";
      exit_code = 0;
      return std::nullopt;
    }
    return cl;
  } catch (const CommandLineError& e) {
    err << info.name << ": " << e.what() << "\n\n";
    usage(err);
    exit_code = 2;
    return std::nullopt;
  }
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(sig);
  }
}

int serve_until_stopped(ServiceSignals& signals, Notifier& notifier, const Hooks& hooks, spdlog::logger& log,
                        const std::string& ready_status) {
  using namespace std::chrono;
  notifier.ready(ready_status);
  const auto period = notifier.watchdog_period();
  // Half the period, as sd_watchdog_enabled(3) recommends; without a watchdog wake up rarely.
  const milliseconds tick = period ? std::max(milliseconds(50), duration_cast<milliseconds>(*period) / 2) : seconds(3600);
  if (period) {
    log.debug("systemd watchdog every {} ms", duration_cast<milliseconds>(*period).count());
    notifier.watchdog();
  }
  auto next_ping = steady_clock::now() + tick;
  for (;;) {
    const auto now = steady_clock::now();
    const auto wait_for = period ? duration_cast<milliseconds>(next_ping - now) : tick;
    const auto sig = signals.wait(wait_for);
    if (period && steady_clock::now() >= next_ping) {
      if (!hooks.healthy || hooks.healthy())
        notifier.watchdog();
      else
        log.error("health check failed: withholding the watchdog ping");
      next_ping = steady_clock::now() + tick;
    }
    if (!sig) continue;
    if (*sig == SIGHUP) {
      log.info("Received SIGHUP, reloading");
      notifier.reloading();
      try {
        if (hooks.reload) hooks.reload();
        log.info("Reload complete");
      } catch (const std::exception& e) {
        log.error("Reload failed, keeping the previous settings: {}", e.what());
      }
      notifier.ready(ready_status);
      continue;
    }
    log.info("Received {}, shutting down", signal_name(*sig));
    notifier.stopping();
    return *sig;
  }
}

}  // namespace kl::daemon
