// The pull-mode poller (wire-contract §3.7, §4): one timer per agent on a kl::loop::EventLoop, requests through one
// kl::http::AsyncClient (kept-alive connections, agent certificates pinned), verification on a WorkerPool.
// No thread per agent. Every state change is committed to the store before the next request is scheduled.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/service/http/async_client.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/metrics/histogram.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "common/attest/quote/failure.hpp"
#include "verifier/agent_scheduler.hpp"
#include "verifier/policy_cache.hpp"
#include "verifier/webhook_sender.hpp"
#include "verifier/state_writer.hpp"
#include "verifier/verifier_config.hpp"

namespace kl::verifier {

struct PollerStats {
  std::uint64_t quotes_requested = 0, quotes_verified = 0, quotes_failed = 0, transport_errors = 0;
  std::size_t agents = 0;
  // Poll lateness (timer due -> request sent), histogram in 10 ms buckets; the last bucket holds >= 10 s.
  std::vector<std::uint64_t> lateness_10ms;
  // Smallest lateness L (ms) such that fraction `q` of the polls were at most L late (bucket upper bound).
  double lateness_quantile_ms(double q) const;
  // For /metrics: time to verify one quote response (seconds), failed rounds by their top event id.
  metrics::HistogramSnapshot verification_seconds;
  std::map<std::string, std::uint64_t> failures_by_event;
};

class Poller : public AgentScheduler {
 public:
  // All references must outlive the poller. `now` gives unix seconds (injected for tests).
  Poller(const VerifierSettings& settings, storage::VerifierStore& store, loop::EventLoop& loop,
         http::AsyncClient& client, loop::WorkerPool& workers, std::shared_ptr<spdlog::logger> log,
         std::function<long long()> now = nullptr);
  ~Poller() override;

  // Startup: every agent of this verifier_id in START, GET_QUOTE, *_RETRY or PROVIDE_V is reset to START and
  // polled again; returns how many.
  std::size_t resume_all();

  void start(const storage::VerifierAgent& agent) override;
  bool stop(const std::string& agent_id, int new_state) override;
  RemoveResult remove(const std::string& agent_id) override;
  void policy_changed(PolicyKind kind, const std::string& name) override;
  // SIGHUP: every agent re-reads its runtime and measured-boot policy rows before its next round.
  void reload_policies() { policies_.invalidate_all(); }

  // Cancels every timer (callbacks still in flight are ignored afterwards) and commits every queued state.
  void shutdown();
  // Commits every queued agent state now (state changes are otherwise committed in batches within ~20 ms).
  void flush();
  PollerStats stats() const;
  const PolicyCache& policy_cache() const { return policies_; }

  struct Agent;   // per-agent state (poller.cpp)

 private:
  void schedule(const std::shared_ptr<Agent>& a, double seconds, std::uint64_t gen);
  void request_quote(const std::shared_ptr<Agent>& a, std::uint64_t gen);
  void on_quote(const std::shared_ptr<Agent>& a, std::uint64_t gen, const std::string& nonce,
                std::optional<http::ClientResponse> resp, const std::string& error);
  void deliver_v(const std::shared_ptr<Agent>& a, std::uint64_t gen);
  void on_vkey(const std::shared_ptr<Agent>& a, std::uint64_t gen, std::optional<http::ClientResponse> resp,
               const std::string& error);
  bool took_over_failed_exchange(const std::shared_ptr<Agent>& a, std::uint64_t gen, std::unique_lock<std::mutex>& al,
                                 const std::optional<http::ClientResponse>& resp, const std::string& error,
                                 bool provide_v);
  void renegotiate(const std::shared_ptr<Agent>& a, std::uint64_t gen, bool then_v);
  void retry_or_fail(const std::shared_ptr<Agent>& a, std::uint64_t gen, bool provide_v, const std::string& why);
  void notify_revocation(const storage::VerifierAgent& failed, const std::string& type, const kl::Event* event);
  void commit(Agent& a);
  bool refresh_policies(Agent& a, std::string& error);
  bool finish_if_terminated(const std::shared_ptr<Agent>& a);

  const VerifierSettings& settings_;
  storage::VerifierStore& store_;
  loop::EventLoop& loop_;
  http::AsyncClient& client_;
  loop::WorkerPool& workers_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<long long()> now_;
  StateWriter writer_;
  PolicyCache policies_;
  WebhookSender webhook_;   // after the loop/client references it uses; destroyed before them

  mutable std::mutex agents_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Agent>> agents_;
  std::atomic<bool> shut_down_{false};
  std::atomic<std::uint64_t> requested_{0}, verified_{0}, failed_{0}, transport_errors_{0};
  static constexpr std::size_t kLatenessBuckets = 1001;
  std::unique_ptr<std::atomic<std::uint64_t>[]> lateness_{new std::atomic<std::uint64_t>[kLatenessBuckets]()};
  metrics::Histogram verify_time_{metrics::Histogram::latency_bounds()};
  metrics::LabelledCounter failures_by_event_{128};
};

}  // namespace kl::verifier
