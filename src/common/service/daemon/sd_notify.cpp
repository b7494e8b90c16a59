#include "common/service/daemon/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace kl::daemon {

Notifier::Notifier(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  const std::string sock = get("NOTIFY_SOCKET");
  if (!sock.empty() && (sock[0] == '/' || sock[0] == '@') && sock.size() < sizeof(sockaddr_un::sun_path)) {
    address_ = sock;
    if (address_[0] == '@') address_[0] = '\0';
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  // WATCHDOG_PID, when set, names the process the watchdog is meant for (not a child we might spawn).
  const std::string wpid = get("WATCHDOG_PID");
  const std::string wusec = get("WATCHDOG_USEC");
  if (!wusec.empty() && (wpid.empty() || wpid == std::to_string(::getpid()))) {
    try {
      const long long us = std::stoll(wusec);
      if (us > 0) watchdog_ = std::chrono::microseconds(us);
    } catch (const std::exception&) {
      // An unparsable value means no watchdog, as sd_watchdog_enabled() treats it.
    }
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

// Never blocks: a manager that stopped reading must not stall the signal loop (a lost ping then simply
// lets the watchdog fire, which is the truth about a stuck manager connection).
bool Notifier::send(const std::string& state) {
  if (fd_ < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address_.data(), address_.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '\0' ? 0 : 1));
  return ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr), len) ==
         static_cast<ssize_t>(state.size());
}

bool Notifier::ready(const std::string& status) {
  return send("READY=1\nMAINPID=" + std::to_string(::getpid()) + (status.empty() ? "" : "\nSTATUS=" + status));
}

bool Notifier::reloading() {
  // Type=notify-reload (systemd 253+) wants the monotonic timestamp with RELOADING=1; older ones ignore it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

bool Notifier::stopping() { return send("STOPPING=1"); }
bool Notifier::watchdog() { return send("WATCHDOG=1"); }
bool Notifier::status(const std::string& text) { return send("STATUS=" + text); }

}  // namespace kl::daemon
