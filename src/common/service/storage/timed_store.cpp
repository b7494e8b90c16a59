#include "common/service/storage/timed_store.hpp"

#include <chrono>

namespace kl::storage {
namespace {

class Timer {
 public:
  Timer() = default;
  // Times `f`; a StorageError (the database failed, not a duplicate or a missing row) is counted.
  template <class F>
  auto run(F&& f) -> decltype(f()) {
    const auto start = std::chrono::steady_clock::now();
    struct Observe {
      Timer& t;
      std::chrono::steady_clock::time_point start;
      ~Observe() { t.hist_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()); }
    } obs{*this, start};
    try {
      return f();
    } catch (const StorageError&) {
      errors_.inc();
      throw;
    }
  }
  void fill(StoreStats& s, const std::string& backend) const {
    s.backend = backend;
    s.latency = hist_.snapshot();
    s.errors = errors_.value();
  }

 private:
  metrics::Histogram hist_{metrics::Histogram::latency_bounds()};
  metrics::Counter errors_;
};

class TimedRegistrarStore final : public RegistrarStore {
 public:
  TimedRegistrarStore(std::unique_ptr<RegistrarStore> inner, std::string backend)
      : in_(std::move(inner)), backend_(std::move(backend)) {}
  std::optional<RegistrarAgent> find(const std::string& id) override { return t_.run([&] { return in_->find(id); }); }
  std::vector<std::string> list_ids() override { return t_.run([&] { return in_->list_ids(); }); }
  void insert(const RegistrarAgent& a) override { t_.run([&] { in_->insert(a); }); }
  bool update(const RegistrarAgent& a) override { return t_.run([&] { return in_->update(a); }); }
  bool remove(const std::string& id) override { return t_.run([&] { return in_->remove(id); }); }
  bool set_active(const std::string& id, bool v) override { return t_.run([&] { return in_->set_active(id, v); }); }
  bool remove_if_inactive(const std::string& id) override {
    return t_.run([&] { return in_->remove_if_inactive(id); });
  }
  StoreStats stats() const override {
    StoreStats s = in_->stats();
    t_.fill(s, backend_);
    return s;
  }

 private:
  std::unique_ptr<RegistrarStore> in_;
  std::string backend_;
  mutable Timer t_;
};

class TimedVerifierStore final : public VerifierStore {
 public:
  TimedVerifierStore(std::unique_ptr<VerifierStore> inner, std::string backend)
      : in_(std::move(inner)), backend_(std::move(backend)) {}
  using OptId = std::optional<std::string>;
  std::optional<VerifierAgent> find_agent(const std::string& id) override {
    return t_.run([&] { return in_->find_agent(id); });
  }
  std::vector<VerifierAgent> load_agents(const OptId& v) override { return t_.run([&] { return in_->load_agents(v); }); }
  std::vector<std::string> list_agent_ids(const OptId& v) override {
    return t_.run([&] { return in_->list_agent_ids(v); });
  }
  VerifierAgent add_agent(VerifierAgent a, const std::optional<RuntimePolicy>& rp,
                          const std::optional<MbPolicy>& mb) override {
    return t_.run([&] { return in_->add_agent(std::move(a), rp, mb); });
  }
  bool update_agent(const VerifierAgent& a) override { return t_.run([&] { return in_->update_agent(a); }); }
  size_t update_agents(const std::vector<VerifierAgent>& a) override {
    return t_.run([&] { return in_->update_agents(a); });
  }
  bool remove_agent(const std::string& id) override { return t_.run([&] { return in_->remove_agent(id); }); }
  std::optional<RuntimePolicy> find_runtime_policy(const std::string& n) override {
    return t_.run([&] { return in_->find_runtime_policy(n); });
  }
  std::optional<RuntimePolicy> find_runtime_policy_by_id(long long id) override {
    return t_.run([&] { return in_->find_runtime_policy_by_id(id); });
  }
  std::vector<std::string> list_runtime_policy_names() override {
    return t_.run([&] { return in_->list_runtime_policy_names(); });
  }
  long long insert_runtime_policy(const RuntimePolicy& p) override {
    return t_.run([&] { return in_->insert_runtime_policy(p); });
  }
  bool update_runtime_policy(const RuntimePolicy& p) override {
    return t_.run([&] { return in_->update_runtime_policy(p); });
  }
  bool remove_runtime_policy(const std::string& n) override {
    return t_.run([&] { return in_->remove_runtime_policy(n); });
  }
  std::optional<MbPolicy> find_mb_policy(const std::string& n) override {
    return t_.run([&] { return in_->find_mb_policy(n); });
  }
  std::optional<MbPolicy> find_mb_policy_by_id(long long id) override {
    return t_.run([&] { return in_->find_mb_policy_by_id(id); });
  }
  std::vector<std::string> list_mb_policy_names() override { return t_.run([&] { return in_->list_mb_policy_names(); }); }
  long long insert_mb_policy(const MbPolicy& p) override { return t_.run([&] { return in_->insert_mb_policy(p); }); }
  bool update_mb_policy(const MbPolicy& p) override { return t_.run([&] { return in_->update_mb_policy(p); }); }
  bool remove_mb_policy(const std::string& n) override { return t_.run([&] { return in_->remove_mb_policy(n); }); }
  std::vector<std::pair<int, std::size_t>> count_by_state(const OptId& v) override {
    return t_.run([&] { return in_->count_by_state(v); });
  }
  StoreStats stats() const override {
    StoreStats s = in_->stats();
    t_.fill(s, backend_);
    return s;
  }

 private:
  std::unique_ptr<VerifierStore> in_;
  std::string backend_;
  mutable Timer t_;
};

}  // namespace

std::unique_ptr<RegistrarStore> timed(std::unique_ptr<RegistrarStore> inner, std::string backend) {
  return std::make_unique<TimedRegistrarStore>(std::move(inner), std::move(backend));
}
std::unique_ptr<VerifierStore> timed(std::unique_ptr<VerifierStore> inner, std::string backend) {
  return std::make_unique<TimedVerifierStore>(std::move(inner), std::move(backend));
}

}  // namespace kl::storage
