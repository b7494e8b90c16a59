// EventLoop: an io_context kept alive by a work guard and run by N threads. Timers are steady_timers whose
// callbacks check a shared cancellation flag, so TimerHandle::cancel never touches the (non thread-safe) timer.
#include "common/service/loop/event_loop.hpp"

#include <pthread.h>
#include <csignal>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace kl::loop {

namespace asio = boost::asio;

struct TimerHandle::State {
  std::atomic<bool> cancelled{false};
};

void TimerHandle::cancel() {
  if (state_) state_->cancelled.store(true, std::memory_order_release);
}

struct EventLoop::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::vector<std::thread> threads;
  std::mutex stop_mu;
  bool stopped = false;
};

EventLoop::EventLoop(unsigned threads) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  impl_->threads.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([io = &impl_->io] {
      // The async client drives OpenSSL on raw sockets (SSL_write -> write()): a peer that closed must give
      // EPIPE on this thread, never a process-killing SIGPIPE, whatever the embedding program does.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      for (;;) {
        try {
          io->run();
          return;
        } catch (...) {
          // A throwing callback must not take the whole loop down; keep serving the others.
        }
      }
    });
  }
}

EventLoop::~EventLoop() { stop(); }

void EventLoop::post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

TimerHandle EventLoop::schedule_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto state = std::make_shared<TimerHandle::State>();
  auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
  timer->async_wait([timer, state, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (ec || state->cancelled.load(std::memory_order_acquire)) return;
    fn();
  });
  return TimerHandle(std::move(state));
}

void EventLoop::stop() {
  std::lock_guard<std::mutex> lk(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->guard.reset();
  impl_->io.stop();
  const auto self = std::this_thread::get_id();
  for (auto& t : impl_->threads) {
    if (!t.joinable()) continue;
    if (t.get_id() == self) {
      t.detach();   // stop() called from a loop callback: that thread returns from run() by itself
    } else {
      t.join();
    }
  }
}

void* EventLoop::native() { return &impl_->io; }

// ---- WorkerPool ----

struct WorkerPool::Impl {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  bool stopping = false;
  std::vector<std::thread> threads;
};

WorkerPool::WorkerPool(unsigned threads) : impl_(std::make_unique<Impl>()) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([d = impl_.get()] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock<std::mutex> lk(d->mu);
          d->cv.wait(lk, [d] { return d->stopping || !d->jobs.empty(); });
          if (d->jobs.empty()) return;   // stopping and drained
          job = std::move(d->jobs.front());
          d->jobs.pop_front();
        }
        try {
          job();
        } catch (...) {
          // A job reports its own errors through the result it posts back; nothing to do here.
        }
      }
    });
  }
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else if (t.joinable()) {
      t.join();
    }
  }
}

void WorkerPool::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->jobs.push_back(std::move(job));
  }
  impl_->cv.notify_one();
}

std::size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->jobs.size();
}

}  // namespace kl::loop
