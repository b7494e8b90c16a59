// SIGTERM, SIGINT and SIGHUP taken synchronously by one thread: blocked in every thread (construct it
// before any thread starts, so new threads inherit the mask) and collected with sigtimedwait.
#pragma once
#include <chrono>
#include <optional>

namespace kl::daemon {

class ServiceSignals {
 public:
  ServiceSignals();   // blocks TERM/INT/HUP in the calling thread, ignores SIGPIPE
  ~ServiceSignals();  // restores the previous mask
  ServiceSignals(const ServiceSignals&) = delete;
  ServiceSignals& operator=(const ServiceSignals&) = delete;

  // The next of those signals, or nullopt once `timeout` passed without one.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  struct Saved;
  Saved* saved_;
};

}  // namespace kl::daemon
