// One boost::asio::io_context run by N threads, plus timers and a CPU worker pool.
// Boost stays out of this header: everything outside loop/ and http/async_client.cpp sees only std types.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace kl::loop {

// Handle to a timer scheduled with EventLoop::schedule_after. Copyable; all copies refer to the same timer.
class TimerHandle {
 public:
  TimerHandle() = default;
  // Prevents the callback from running if it has not started yet. Safe from any thread, idempotent,
  // and harmless after the timer fired or after the loop was destroyed.
  void cancel();
  bool valid() const { return static_cast<bool>(state_); }

  struct State;   // defined in event_loop.cpp
  explicit TimerHandle(std::shared_ptr<State> s) : state_(std::move(s)) {}

 private:
  std::shared_ptr<State> state_;
};

class EventLoop {
 public:
  explicit EventLoop(unsigned threads = 1);
  ~EventLoop();                                  // stops and joins
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void post(std::function<void()> fn);
  // Runs fn on one of the loop's threads after `delay` unless cancelled first.
  TimerHandle schedule_after(std::chrono::milliseconds delay, std::function<void()> fn);
  // Stops the io_context and joins its threads (idempotent). Pending callbacks are dropped.
  void stop();
  // The io_context*, for async_client.cpp only (keeps Boost out of this header).
  void* native();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A small pool of worker threads for CPU-heavy verification; results are posted back by the caller.
class WorkerPool {
 public:
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();                                 // runs the queued jobs to completion, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> job);
  std::size_t queued() const;                    // jobs waiting (for back-pressure / metrics)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kl::loop
