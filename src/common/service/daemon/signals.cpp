#include "common/service/daemon/signals.hpp"

#include <pthread.h>

#include <cerrno>
#include <csignal>

namespace kl::daemon {

struct ServiceSignals::Saved {
  sigset_t wanted;
  sigset_t previous;
};

ServiceSignals::ServiceSignals() : saved_(new Saved) {
  sigemptyset(&saved_->wanted);
  sigaddset(&saved_->wanted, SIGTERM);
  sigaddset(&saved_->wanted, SIGINT);
  sigaddset(&saved_->wanted, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &saved_->wanted, &saved_->previous);
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing mid-write must not kill the service
}

ServiceSignals::~ServiceSignals() {
  pthread_sigmask(SIG_SETMASK, &saved_->previous, nullptr);
  delete saved_;
}

std::optional<int> ServiceSignals::wait(std::chrono::milliseconds timeout) {
  const auto ms = timeout.count() < 0 ? 0 : timeout.count();
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  for (;;) {
    const int sig = sigtimedwait(&saved_->wanted, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno == EINTR) continue;  // another signal's handler ran; keep waiting (the full timeout again, harmless)
    return std::nullopt;           // EAGAIN: timeout
  }
}

}  // namespace kl::daemon
