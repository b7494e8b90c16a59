// The poller's single database writer: agent rows queued by the poller threads are committed in batches (one
// transaction per batch, the latest row per agent wins) every few milliseconds, so verification never waits on
// SQLite and thousands of agents cost a few transactions per second.
#pragma once
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/service/storage/verifier_store.hpp"

namespace kl::verifier {

class StateWriter {
 public:
  StateWriter(storage::VerifierStore& store, std::shared_ptr<spdlog::logger> log,
              std::chrono::milliseconds period = std::chrono::milliseconds(20));
  ~StateWriter();   // flushes what is queued, then joins
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  void enqueue(const storage::VerifierAgent& row);
  // Drops a queued row (the agent is being deleted).
  void forget(const std::string& agent_id);
  // Commits everything queued before returning.
  void flush();

 private:
  void run();
  void write_pending();

  storage::VerifierStore& store_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, storage::VerifierAgent> pending_;
  // One batch at a time, taken and written under this lock so batches commit in the order they were taken.
  // Lock order: write_mu_ before mu_.
  std::mutex write_mu_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kl::verifier
