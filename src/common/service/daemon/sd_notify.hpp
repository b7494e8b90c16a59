// systemd's readiness protocol (sd_notify(3)) spoken directly: datagrams of "KEY=value" lines sent to the
// unix socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). No libsystemd.
#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace kl::daemon {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env` (the process environment by default).
  // Without NOTIFY_SOCKET every call is a no-op, so the daemons run the same outside systemd.
  explicit Notifier(const std::map<std::string, std::string>& env);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Watchdog period systemd expects pings within (WATCHDOG_USEC), if it is meant for this process.
  std::optional<std::chrono::microseconds> watchdog_period() const { return watchdog_; }

  bool send(const std::string& state);  // raw message; false if not enabled or the send failed
  bool ready(const std::string& status = {});
  bool reloading();
  bool stopping();
  bool watchdog();
  bool status(const std::string& text);

 private:
  int fd_ = -1;
  std::string address_;  // sun_path bytes ('\0'-prefixed for abstract sockets)
  std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace kl::daemon
