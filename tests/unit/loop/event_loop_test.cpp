#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/service/loop/event_loop.hpp"

using namespace std::chrono_literals;
using kl::loop::EventLoop;
using kl::loop::WorkerPool;

TEST_CASE("timers fire in deadline order, not scheduling order", "[loop]") {
  EventLoop loop(1);
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> all;
  auto record = [&](int v) {
    std::lock_guard<std::mutex> lk(mu);
    order.push_back(v);
    if (order.size() == 3) all.set_value();
  };
  loop.schedule_after(90ms, [&] { record(3); });
  loop.schedule_after(10ms, [&] { record(1); });
  loop.schedule_after(50ms, [&] { record(2); });
  REQUIRE(all.get_future().wait_for(2s) == std::future_status::ready);
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("a timer does not fire before its delay", "[loop]") {
  EventLoop loop(2);
  const auto t0 = std::chrono::steady_clock::now();
  std::promise<std::chrono::steady_clock::time_point> fired;
  loop.schedule_after(80ms, [&] { fired.set_value(std::chrono::steady_clock::now()); });
  auto f = fired.get_future();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  CHECK(f.get() - t0 >= 80ms);
}

TEST_CASE("a cancelled timer never runs - cancel is idempotent and harmless after firing", "[loop]") {
  EventLoop loop(2);
  std::atomic<int> cancelled_runs{0}, normal_runs{0};
  auto h = loop.schedule_after(40ms, [&] { ++cancelled_runs; });
  auto keep = loop.schedule_after(40ms, [&] { ++normal_runs; });
  auto copy = h;
  h.cancel();
  copy.cancel();   // same timer, second cancel
  std::this_thread::sleep_for(200ms);
  CHECK(cancelled_runs == 0);
  CHECK(normal_runs == 1);
  keep.cancel();   // already fired: no effect, no crash
  CHECK(normal_runs == 1);
  kl::loop::TimerHandle empty;
  empty.cancel();   // default handle: no-op
  CHECK_FALSE(empty.valid());
}

TEST_CASE("cancel from another thread races safely with many timers", "[loop]") {
  EventLoop loop(2);
  std::atomic<int> runs{0};
  std::vector<kl::loop::TimerHandle> handles;
  for (int i = 0; i < 1000; ++i) handles.push_back(loop.schedule_after(std::chrono::milliseconds(30 + i % 20), [&] { ++runs; }));
  std::thread t([&] {
    for (std::size_t i = 0; i < handles.size(); i += 2) handles[i].cancel();
  });
  t.join();
  std::this_thread::sleep_for(300ms);
  CHECK(runs == 500);
}

TEST_CASE("post from many threads runs every callback exactly once", "[loop]") {
  EventLoop loop(2);
  std::atomic<int> count{0};
  std::promise<void> done;
  constexpr int kThreads = 8, kEach = 2000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i)
        loop.post([&] {
          if (++count == kThreads * kEach) done.set_value();
        });
    });
  }
  for (auto& p : producers) p.join();
  REQUIRE(done.get_future().wait_for(5s) == std::future_status::ready);
  CHECK(count == kThreads * kEach);
}

TEST_CASE("a throwing callback does not stop the loop", "[loop]") {
  EventLoop loop(1);
  loop.post([] { throw std::runtime_error("boom"); });
  std::promise<int> p;
  loop.post([&] { p.set_value(7); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  CHECK(f.get() == 7);
}

TEST_CASE("stop drops pending timers and is idempotent", "[loop]") {
  std::atomic<int> runs{0};
  {
    EventLoop loop(1);
    loop.schedule_after(500ms, [&] { ++runs; });
    loop.stop();
    loop.stop();
  }
  std::this_thread::sleep_for(50ms);
  CHECK(runs == 0);
}

TEST_CASE("worker pool runs every job on its own threads and drains on destruction", "[loop]") {
  std::atomic<int> count{0};
  std::mutex mu;
  std::set<std::thread::id> ids;
  const auto caller = std::this_thread::get_id();
  {
    WorkerPool pool(3);
    for (int i = 0; i < 300; ++i)
      pool.submit([&] {
        std::this_thread::sleep_for(100us);
        std::lock_guard<std::mutex> lk(mu);
        ids.insert(std::this_thread::get_id());
        ++count;
      });
  }
  CHECK(count == 300);
  CHECK(ids.count(caller) == 0);
  CHECK(ids.size() >= 1);
  CHECK(ids.size() <= 3);
}

TEST_CASE("worker results posted back to the loop", "[loop]") {
  EventLoop loop(1);
  WorkerPool pool(2);
  std::promise<std::pair<int, bool>> p;
  std::thread::id loop_thread;
  loop.post([&] { loop_thread = std::this_thread::get_id(); });
  std::this_thread::sleep_for(20ms);
  pool.submit([&] {
    const int result = 6 * 7;   // the "verification"
    loop.post([&, result] { p.set_value({result, std::this_thread::get_id() == loop_thread}); });
  });
  auto f = p.get_future();
  REQUIRE(f.wait_for(2s) == std::future_status::ready);
  auto [v, on_loop] = f.get();
  CHECK(v == 42);
  CHECK(on_loop);
}
