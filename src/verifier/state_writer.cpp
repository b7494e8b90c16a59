#include "verifier/state_writer.hpp"

#include <vector>

namespace kl::verifier {

StateWriter::StateWriter(storage::VerifierStore& store, std::shared_ptr<spdlog::logger> log,
                         std::chrono::milliseconds period)
    : store_(store), log_(std::move(log)), period_(period), thread_([this] { run(); }) {}

StateWriter::~StateWriter() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  flush();
}

void StateWriter::enqueue(const storage::VerifierAgent& row) {
  std::lock_guard lk(mu_);
  pending_[row.agent_id] = row;
}

void StateWriter::forget(const std::string& agent_id) {
  std::lock_guard lk(mu_);
  pending_.erase(agent_id);
}

void StateWriter::write_pending() {
  std::lock_guard wl(write_mu_);
  std::vector<storage::VerifierAgent> rows;
  {
    std::lock_guard lk(mu_);
    rows.reserve(pending_.size());
    for (auto& [id, row] : pending_) rows.push_back(std::move(row));
    pending_.clear();
  }
  if (rows.empty()) return;
  try {
    store_.update_agents(rows);   // rows of deleted agents update nothing
  } catch (const std::exception& e) {
    log_->error("Cannot store the state of {} agent(s): {}", rows.size(), e.what());
  }
}

void StateWriter::flush() { write_pending(); }

void StateWriter::run() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, period_, [this] { return stop_; });
      if (stop_) return;
    }
    write_pending();
  }
}

}  // namespace kl::verifier
