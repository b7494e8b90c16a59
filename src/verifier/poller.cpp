#include "verifier/poller.hpp"

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/crypto/random.hpp"
#include "common/attest/quote/clock_check.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "verifier/agents_handler.hpp"
#include "verifier/ima_columns.hpp"
#include "verifier/operational_state.hpp"
#include "verifier/quote_round.hpp"
#include "verifier/revocation.hpp"
#include "verifier/version_handler.hpp"

namespace kl::verifier {

using nlohmann::json;

struct Poller::Agent {
  std::mutex m;
  storage::VerifierAgent row;
  ossl::Pkey ak;
  AttestationState att;
  http::AsyncTarget target;
  loop::TimerHandle timer;
  std::chrono::steady_clock::time_point due{};   // when the current timer should fire (lateness metric)
  std::uint64_t generation = 0;   // bumped by start/stop/remove: callbacks of an older generation are dropped
  bool in_flight = false;
  bool terminated = false;        // DELETE while a request was in flight: removed when it completes
  bool stopped = true;
  int retries = 0;
  bool partial0 = true;           // ask for the pubkey on the next quote
  bool v_delivered = false;
  bool renegotiated = false;      // one renegotiation per failing request
  bool policies_loaded = false;   // att.runtime_policy / att.mb_policy fetched from the policy cache
  std::uint64_t policy_generation = 0;
};

namespace {

std::string random_nonce() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < 20) {
    for (std::uint8_t b : crypto::random_bytes(32)) {
      if (b >= 248) continue;   // 248 = 4 * 62: rejection keeps the draw uniform
      out += alphabet[b % 62];
      if (out.size() == 20) break;
    }
  }
  return out;
}

std::vector<std::string> list_column(const std::optional<std::string>& col) {
  std::vector<std::string> out;
  const json j = decode_json_column(col);
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

// RSA-OAEP(SHA-1, MGF1-SHA-1, no label) of V to the agent's PEM public key, base64 (§4.4).
std::string encrypt_v(const std::string& pubkey_pem, const Bytes& v) {
  ossl::Bio bio(BIO_new_mem_buf(pubkey_pem.data(), static_cast<int>(pubkey_pem.size())));
  ossl::Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("agent pubkey is not a PEM public key");
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), nullptr, &len, v.data(), v.size()) != 1)
    throw std::runtime_error("cannot encrypt V: " + ossl::last_error());
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, v.data(), v.size()) != 1)
    throw std::runtime_error("cannot encrypt V: " + ossl::last_error());
  out.resize(len);
  return base64_encode(out);
}

bool version_not_supported(const http::ClientResponse& r) {
  if (r.status != 400) return false;
  try {
    const json j = json::parse(r.body);
    if (j.contains("status") && j["status"].is_string() &&
        j["status"].get<std::string>().find("API version not supported") != std::string::npos)
      return true;
  } catch (const std::exception&) {
  }
  return r.reason.find("API version not supported") != std::string::npos;
}

std::string pick_version(const json& results) {
  // Prefer supported_versions (plural), else supported_version; highest common with ours (§1.3).
  std::vector<std::string> theirs;
  if (results.contains("supported_versions") && results["supported_versions"].is_array()) {
    for (const auto& v : results["supported_versions"])
      if (v.is_string()) theirs.push_back(v.get<std::string>());
  } else if (results.contains("supported_version") && results["supported_version"].is_string()) {
    theirs.push_back(results["supported_version"].get<std::string>());
  }
  std::string best;
  auto key = [](const std::string& v) {
    const auto dot = v.find('.');
    try {
      return std::pair<int, int>(std::stoi(v.substr(0, dot)), dot == std::string::npos ? 0 : std::stoi(v.substr(dot + 1)));
    } catch (const std::exception&) {
      return std::pair<int, int>(-1, -1);
    }
  };
  for (const auto& v : theirs)
    for (const auto& ours : supported_api_versions())
      if (v == ours && ours.rfind("3", 0) != 0 && (best.empty() || key(v) > key(best))) best = v;
  return best;
}

}  // namespace

Poller::Poller(const VerifierSettings& settings, storage::VerifierStore& store, loop::EventLoop& loop,
               http::AsyncClient& client, loop::WorkerPool& workers, std::shared_ptr<spdlog::logger> log,
               std::function<long long()> now)
    : settings_(settings), store_(store), loop_(loop), client_(client), workers_(workers), log_(std::move(log)),
      now_(now ? std::move(now) : [] {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
      }),
      writer_(store, log_), policies_(store),
      webhook_(loop, client,
               WebhookRetryPolicy{settings.max_retries, settings.retry_interval, settings.exponential_backoff,
                                  std::chrono::milliseconds(static_cast<long long>(settings.request_timeout * 1000.0))}) {}

Poller::~Poller() { shutdown(); }

void Poller::shutdown() {
  shut_down_ = true;
  std::lock_guard lk(agents_mutex_);
  for (auto& [id, a] : agents_) {
    std::lock_guard al(a->m);
    ++a->generation;
    a->timer.cancel();
  }
  writer_.flush();
}

PollerStats Poller::stats() const {
  PollerStats s;
  s.quotes_requested = requested_;
  s.quotes_verified = verified_;
  s.quotes_failed = failed_;
  s.transport_errors = transport_errors_;
  s.verification_seconds = verify_time_.snapshot();
  for (const auto& [k, v] : failures_by_event_.values()) s.failures_by_event[k.empty() ? "" : k[0]] = v;
  s.lateness_10ms.resize(kLatenessBuckets);
  for (std::size_t i = 0; i < kLatenessBuckets; ++i) s.lateness_10ms[i] = lateness_[i].load(std::memory_order_relaxed);
  std::lock_guard lk(agents_mutex_);
  s.agents = agents_.size();
  return s;
}

double PollerStats::lateness_quantile_ms(double q) const {
  std::uint64_t total = 0;
  for (auto n : lateness_10ms) total += n;
  if (total == 0) return 0;
  const double want = q * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < lateness_10ms.size(); ++i) {
    seen += lateness_10ms[i];
    if (static_cast<double>(seen) >= want) return static_cast<double>((i + 1) * 10);
  }
  return static_cast<double>(lateness_10ms.size() * 10);
}

std::size_t Poller::resume_all() {
  std::size_t n = 0;
  for (const auto& a : store_.load_agents(settings_.uuid)) {
    if (!resumes_on_startup(a.operational_state.value_or(0))) continue;
    start(a);
    ++n;
  }
  return n;
}

void Poller::commit(Agent& a) { writer_.enqueue(a.row); }

void Poller::flush() { writer_.flush(); }

void Poller::start(const storage::VerifierAgent& row) {
  if (shut_down_) return;
  std::shared_ptr<Agent> a;
  {
    std::lock_guard lk(agents_mutex_);
    auto& slot = agents_[row.agent_id];
    if (!slot) slot = std::make_shared<Agent>();
    a = slot;
  }
  std::uint64_t gen;
  {
    std::lock_guard al(a->m);
    a->timer.cancel();
    gen = ++a->generation;
    a->row = row;
    a->row.operational_state = static_cast<int>(State::start);
    a->terminated = false;
    a->stopped = false;
    a->retries = 0;
    a->partial0 = true;
    a->v_delivered = false;
    a->renegotiated = false;
    a->att = AttestationState{};
    try {
      a->att.tpm_policy = quote::parse_tpm_policy_text(decode_json_string_column(row.tpm_policy));
    } catch (const std::exception& e) {
      log_->warn("Agent {}: stored tpm_policy unusable ({}): using an empty policy", row.agent_id, e.what());
    }
    a->att.accept_hash_algs = list_column(row.accept_tpm_hash_algs);
    a->att.accept_enc_algs = list_column(row.accept_tpm_encryption_algs);
    a->att.accept_sign_algs = list_column(row.accept_tpm_signing_algs);
    a->att.cached_pubkey = row.public_key;
    a->att.ima = ima_state_from_row(row, log_.get());
    a->att.attestation_count = row.attestation_count.value_or(0);
    a->att.mb_policy_name = settings_.measured_boot_policy_name;
    a->att.mb_evaluate_always = settings_.measured_boot_evaluate == MeasuredBootEvaluate::always;
    a->att.ignore_tomtou_errors = settings_.ignore_tomtou_errors;
    if (const auto& keys = row.ima_sign_verification_keys; keys && !keys->empty())
      a->att.tenant_keyring = ima::ImaKeyring::from_string(*keys).value_or(ima::ImaKeyring());
    a->policies_loaded = false;   // fetched on the first round (the tenant may have just stored them)
    if (row.tpm_clockinfo) {
      try {
        a->att.clock = quote::clock_info_from_json(json::parse(*row.tpm_clockinfo));
      } catch (const std::exception&) {
      }
    }
    a->ak.reset();
    try {
      const auto b = base64_decode(row.ak_tpm.value_or(""));
      if (b) a->ak = tpm::public_key(tpm::parse_tpm2b_public(*b));
    } catch (const std::exception& e) {
      log_->error("Agent {}: stored ak_tpm unusable: {}", row.agent_id, e.what());
    }
    a->target = {};
    a->target.host = row.ip.value_or("");
    a->target.port = static_cast<std::uint16_t>(row.port.value_or(0));
    const std::string cert = row.mtls_cert.value_or("");
    a->target.tls = settings_.enable_agent_mtls && !cert.empty() && cert != "disabled";
    if (a->target.tls) a->target.pinned_server_pem = cert;
    commit(*a);
  }
  writer_.flush();   // tenant-initiated changes are visible as soon as the request returns
  schedule(a, 0, gen);
}

bool Poller::stop(const std::string& agent_id, int new_state) {
  std::shared_ptr<Agent> a;
  {
    std::lock_guard lk(agents_mutex_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) return false;
    a = it->second;
  }
  std::lock_guard al(a->m);
  a->timer.cancel();
  ++a->generation;
  a->stopped = true;
  a->row.operational_state = new_state;
  commit(*a);
  writer_.flush();
  return true;
}

RemoveResult Poller::remove(const std::string& agent_id) {
  std::shared_ptr<Agent> a;
  {
    std::lock_guard lk(agents_mutex_);
    auto it = agents_.find(agent_id);
    if (it != agents_.end()) a = it->second;
  }
  if (a) {
    std::lock_guard al(a->m);
    a->timer.cancel();
    ++a->generation;
    a->stopped = true;
    if (a->in_flight) {
      // §3.6: TERMINATED now, the record goes when the pending request completes.
      a->terminated = true;
      a->row.operational_state = static_cast<int>(State::terminated);
      commit(*a);
      writer_.flush();
      return RemoveResult::pending;
    }
  }
  writer_.forget(agent_id);
  writer_.flush();
  store_.remove_agent(agent_id);
  // The store deletes the policies named after the agent with it; their row ids may be reused.
  policies_.invalidate_runtime(agent_id);
  policies_.invalidate_mb(agent_id);
  std::lock_guard lk(agents_mutex_);
  agents_.erase(agent_id);
  return RemoveResult::removed;
}

void Poller::policy_changed(PolicyKind kind, const std::string& name) {
  if (kind == PolicyKind::runtime)
    policies_.invalidate_runtime(name);
  else
    policies_.invalidate_mb(name);
}

bool Poller::refresh_policies(Agent& a, std::string& error) {
  // Called with a.m held, on a worker: the first round, or after a policy changed.
  const std::uint64_t gen = policies_.generation();
  if (a.policies_loaded && a.policy_generation == gen) return true;
  try {
    a.att.runtime_policy = policies_.runtime_policy(a.row.ima_policy_id);
    a.att.mb_policy = policies_.mb_policy(a.row.mb_policy_id);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  a.policies_loaded = true;
  a.policy_generation = gen;
  return true;
}

bool Poller::finish_if_terminated(const std::shared_ptr<Agent>& a) {
  // Called with a->m held.
  if (!a->terminated) return false;
  const std::string id = a->row.agent_id;
  writer_.forget(id);
  writer_.flush();
  store_.remove_agent(id);
  policies_.invalidate_runtime(id);
  policies_.invalidate_mb(id);
  std::lock_guard lk(agents_mutex_);
  auto it = agents_.find(id);
  if (it != agents_.end() && it->second == a) agents_.erase(it);
  return true;
}

void Poller::schedule(const std::shared_ptr<Agent>& a, double seconds, std::uint64_t gen) {
  if (shut_down_) return;
  const auto ms = std::chrono::milliseconds(static_cast<long long>(std::llround(std::max(0.0, seconds) * 1000.0)));
  std::lock_guard al(a->m);
  if (gen != a->generation) return;
  a->due = std::chrono::steady_clock::now() + ms;
  a->timer = loop_.schedule_after(ms, [this, a, gen] { request_quote(a, gen); });
}

void Poller::request_quote(const std::shared_ptr<Agent>& a, std::uint64_t gen) {
  std::string path, nonce;
  http::AsyncTarget target;
  {
    std::lock_guard al(a->m);
    if (gen != a->generation || a->stopped || shut_down_) return;
    if (a->due != std::chrono::steady_clock::time_point{}) {
      const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - a->due);
      const auto bucket = std::min<std::size_t>(kLatenessBuckets - 1, static_cast<std::size_t>(std::max<long long>(0, late.count()) / 10));
      lateness_[bucket].fetch_add(1, std::memory_order_relaxed);
      a->due = {};
    }
    nonce = random_nonce();
    const std::string mask = a->att.tpm_policy.mask.empty() ? "0x0" : a->att.tpm_policy.mask;
    path = "/v" + a->row.supported_version.value_or(current_api_version()) + "/quotes/integrity?nonce=" + nonce +
           "&mask=" + mask + "&partial=" + (a->partial0 ? "0" : "1") +
           "&ima_ml_entry=" + std::to_string(a->att.ima.next_entry);
    a->in_flight = true;
    target = a->target;
  }
  ++requested_;
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(settings_.request_timeout * 1000.0));
  client_.request(target, "GET", path, "", timeout,
                  [this, a, gen, nonce](std::optional<http::ClientResponse> resp, std::string error) {
                    workers_.submit([this, a, gen, nonce, resp = std::move(resp), error = std::move(error)]() mutable {
                      on_quote(a, gen, nonce, std::move(resp), error);
                    });
                  });
}

// Shared by the quote and V-key exchanges: a transport failure (or 408/500/599) goes to retry/fail, and the first
// "API version not supported" answer to renegotiation. True if it took the exchange over (the lock is then released).
bool Poller::took_over_failed_exchange(const std::shared_ptr<Agent>& a, std::uint64_t gen,
                                       std::unique_lock<std::mutex>& al,
                                       const std::optional<http::ClientResponse>& resp, const std::string& error,
                                       bool provide_v) {
  if (!resp || resp->status == 408 || resp->status == 500 || resp->status == 599) {
    if (!provide_v) ++transport_errors_;
    al.unlock();
    retry_or_fail(a, gen, provide_v, resp ? "agent answered " + std::to_string(resp->status) : error);
    return true;
  }
  if (version_not_supported(*resp) && !a->renegotiated) {
    a->renegotiated = true;
    al.unlock();
    renegotiate(a, gen, provide_v);
    return true;
  }
  a->renegotiated = false;
  return false;
}

void Poller::on_quote(const std::shared_ptr<Agent>& a, std::uint64_t gen, const std::string& nonce,
                      std::optional<http::ClientResponse> resp, const std::string& error) {
  std::unique_lock al(a->m);
  a->in_flight = false;
  if (finish_if_terminated(a)) return;
  if (gen != a->generation || a->stopped) return;
  const std::string& id = a->row.agent_id;

  if (took_over_failed_exchange(a, gen, al, resp, error, false)) return;
  const long long now = now_();
  a->row.last_received_quote = now;
  if (resp->status != 200) {
    log_->warn("Agent {}: quote request answered {} {}", id, resp->status, resp->reason);
    Failure f = internal_failure("no_quote", {{"message", "Unexpected answer " + std::to_string(resp->status) + " from agent"}},
                                 settings_.severity_policy);
    a->row.operational_state = static_cast<int>(State::failed);
    if (const Event* e = f.highest_severity_event()) {
      a->row.severity_level = e->severity_label.level;
      a->row.last_event_id = e->event_id;
    }
    a->stopped = true;
    ++failed_;
    failures_by_event_.inc({a->row.last_event_id.value_or("")});
    commit(*a);
    return;
  }

  json results;
  try {
    const json body = json::parse(resp->body);
    if (body.is_object() && body.contains("results")) results = body["results"];
  } catch (const std::exception&) {
  }
  RoundResult round;
  round.ima = a->att.ima;
  std::string policy_error;
  if (!a->ak) {
    round.failure = internal_failure("exception", {{"context", "Agent attestation caused an exception"},
                                                   {"data", "the stored ak_tpm is not a usable key"}},
                                     settings_.severity_policy);
  } else if (!refresh_policies(*a, policy_error)) {
    log_->error("Agent {}: {}", id, policy_error);
    round.failure = internal_failure("exception", {{"context", "Agent attestation caused an exception"},
                                                   {"data", policy_error}},
                                     settings_.severity_policy);
  } else {
    a->att.attestation_count = a->row.attestation_count.value_or(0);
    const auto verify_start = std::chrono::steady_clock::now();
    try {
      round = evaluate_quote_response(results, nonce, a->ak.get(), a->att, settings_.severity_policy);
    } catch (const std::exception& e) {
      // Upstream: internal.verifier.exception "Agent caused the verifier to throw an exception".
      round = RoundResult{};
      round.ima = a->att.ima;
      round.failure = internal_failure("exception", {{"context", "Agent caused the verifier to throw an exception"},
                                                     {"data", e.what()}},
                                       settings_.severity_policy);
    }
    verify_time_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - verify_start).count());
  }

  a->att.ima = round.ima;
  ima_state_to_row(round.ima, a->row);
  if (round.inconclusive) {
    commit(*a);
    const std::uint64_t g = a->generation;
    al.unlock();
    schedule(a, settings_.quote_interval, g);
    return;
  }
  if (round.failure.failed()) {
    ++failed_;
    const Event* top = round.failure.highest_severity_event();
    failures_by_event_.inc({top ? top->event_id : std::string()});
    const bool internal = round.failure.component() == Component::internal;
    const int level = top ? top->severity_label.level : settings_.severity_policy.max_label().level;
    bool notify = false;
    if (!a->row.severity_level || *a->row.severity_level < level) {
      a->row.severity_level = level;
      a->row.last_event_id = top ? std::optional(top->event_id) : std::nullopt;
      a->row.operational_state = static_cast<int>(internal ? State::failed : State::invalid_quote);
      notify = !internal;
    }
    log_->warn("Agent {} failed attestation: {}", id, top ? top->event_id : std::string("(no event)"));
    // Every reason, with its context (e.g. the file an IMA entry names), as upstream logs them.
    std::size_t shown = 0;
    for (const auto& ev : round.failure.events()) {
      if (++shown > 20) {
        log_->warn("Agent {}: ... {} more event(s)", id, round.failure.events().size() - 20);
        break;
      }
      log_->warn("Agent {}: {} {}", id, ev.event_id, ev.context_text());
    }
    const bool stop_polling = !round.failure.recoverable() || level >= settings_.severity_policy.max_label().level;
    if (stop_polling) {
      a->row.operational_state = static_cast<int>(internal ? State::failed : State::invalid_quote);
      a->stopped = true;
    }
    a->partial0 = true;
    commit(*a);
    const storage::VerifierAgent snapshot = a->row;
    std::optional<Event> event = top ? std::optional(*top) : std::nullopt;
    const std::uint64_t g = a->generation;
    al.unlock();
    if (notify) notify_revocation(snapshot, "revocation", event ? &*event : nullptr);
    if (!stop_polling) schedule(a, settings_.quote_interval, g);
    return;
  }

  // Success.
  ++verified_;
  a->retries = 0;
  a->row.attestation_count = a->row.attestation_count.value_or(0) + 1;
  a->row.last_successful_attestation = now;
  a->row.hash_alg = round.hash_alg;
  a->row.enc_alg = round.enc_alg;
  a->row.sign_alg = round.sign_alg;
  if (round.clock_update) {
    a->att.clock = round.clock_update;
    a->row.tpm_clockinfo = quote::clock_info_to_json(*round.clock_update).dump();
  }
  bool pubkey_changed = false;
  if (round.pubkey_from_response && round.pubkey != a->att.cached_pubkey) {
    pubkey_changed = true;
    a->att.cached_pubkey = round.pubkey;
    a->row.public_key = round.pubkey;
  }
  a->partial0 = false;
  const bool need_v = a->row.v && !a->row.v->empty() && (!a->v_delivered || pubkey_changed);
  a->row.operational_state = static_cast<int>(need_v ? State::provide_v : State::get_quote);
  commit(*a);
  const std::uint64_t g = a->generation;
  al.unlock();
  if (need_v)
    deliver_v(a, g);
  else
    schedule(a, settings_.quote_interval, g);
}

void Poller::deliver_v(const std::shared_ptr<Agent>& a, std::uint64_t gen) {
  std::string path, body;
  http::AsyncTarget target;
  {
    std::lock_guard al(a->m);
    if (gen != a->generation || a->stopped) return;
    try {
      const auto v = base64_decode(a->row.v.value_or(""));
      if (!v) throw std::runtime_error("stored V is not base64");
      body = json{{"encrypted_key", encrypt_v(a->att.cached_pubkey.value_or(""), *v)}}.dump();
    } catch (const std::exception& e) {
      log_->error("Agent {}: cannot prepare V: {}", a->row.agent_id, e.what());
      Failure f = internal_failure("no_v", {{"message", e.what()}}, settings_.severity_policy);
      a->row.operational_state = static_cast<int>(State::failed);
      if (const Event* ev = f.highest_severity_event()) {
        a->row.severity_level = ev->severity_label.level;
        a->row.last_event_id = ev->event_id;
      }
      a->stopped = true;
      commit(*a);
      return;
    }
    path = "/v" + a->row.supported_version.value_or(current_api_version()) + "/keys/vkey";
    a->in_flight = true;
    target = a->target;
  }
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(settings_.request_timeout * 1000.0));
  client_.request(target, "POST", path, body, timeout,
                  [this, a, gen](std::optional<http::ClientResponse> resp, std::string error) {
                    workers_.submit([this, a, gen, resp = std::move(resp), error = std::move(error)]() mutable {
                      on_vkey(a, gen, std::move(resp), error);
                    });
                  });
}

void Poller::on_vkey(const std::shared_ptr<Agent>& a, std::uint64_t gen, std::optional<http::ClientResponse> resp,
                     const std::string& error) {
  std::unique_lock al(a->m);
  a->in_flight = false;
  if (finish_if_terminated(a)) return;
  if (gen != a->generation || a->stopped) return;
  if (took_over_failed_exchange(a, gen, al, resp, error, true)) return;
  if (resp->status != 200) {
    Failure f = internal_failure("no_v", {{"message", "Agent refused V with " + std::to_string(resp->status)}},
                                 settings_.severity_policy);
    a->row.operational_state = static_cast<int>(State::failed);
    if (const Event* ev = f.highest_severity_event()) {
      a->row.severity_level = ev->severity_label.level;
      a->row.last_event_id = ev->event_id;
    }
    a->stopped = true;
    commit(*a);
    return;
  }
  a->v_delivered = true;
  a->retries = 0;
  a->row.operational_state = static_cast<int>(State::get_quote);
  commit(*a);
  al.unlock();
  schedule(a, settings_.quote_interval, gen);
}

void Poller::renegotiate(const std::shared_ptr<Agent>& a, std::uint64_t gen, bool then_v) {
  http::AsyncTarget target;
  {
    std::lock_guard al(a->m);
    if (gen != a->generation || a->stopped) return;
    a->in_flight = true;
    target = a->target;
  }
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(settings_.request_timeout * 1000.0));
  client_.request(target, "GET", "/version", "", timeout,
                  [this, a, gen, then_v](std::optional<http::ClientResponse> resp, std::string error) {
                    workers_.submit([this, a, gen, then_v, resp = std::move(resp), error]() {
                      std::unique_lock al(a->m);
                      a->in_flight = false;
                      if (finish_if_terminated(a)) return;
                      if (gen != a->generation || a->stopped) return;
                      std::string picked;
                      if (resp && resp->status == 200) {
                        try {
                          const json j = json::parse(resp->body);
                          if (j.contains("results")) picked = pick_version(j["results"]);
                        } catch (const std::exception&) {
                        }
                      }
                      if (picked.empty()) {
                        Failure f = internal_failure("version_not_supported",
                                                     {{"message", "No API version in common with the agent"}},
                                                     settings_.severity_policy);
                        a->row.operational_state = static_cast<int>(State::failed);
                        if (const Event* ev = f.highest_severity_event()) {
                          a->row.severity_level = ev->severity_label.level;
                          a->row.last_event_id = ev->event_id;
                        }
                        a->stopped = true;
                        commit(*a);
                        return;
                      }
                      log_->info("Agent {}: API version renegotiated to {}", a->row.agent_id, picked);
                      a->row.supported_version = picked;
                      commit(*a);
                      al.unlock();
                      if (then_v)
                        deliver_v(a, gen);
                      else
                        request_quote(a, gen);
                    });
                  });
}

void Poller::retry_or_fail(const std::shared_ptr<Agent>& a, std::uint64_t gen, bool provide_v, const std::string& why) {
  std::unique_lock al(a->m);
  if (gen != a->generation || a->stopped) return;
  ++a->retries;
  if (a->retries > settings_.max_retries) {
    log_->warn("Agent {} unreachable after {} retries ({}): failed", a->row.agent_id, settings_.max_retries, why);
    Failure f = internal_failure(provide_v ? "not_reachable_v" : "not_reachable",
                                 {{"message", "agent was not reachable: " + why}}, settings_.severity_policy);
    a->row.operational_state = static_cast<int>(State::failed);
    const Event* ev = f.highest_severity_event();
    if (ev) {
      a->row.severity_level = ev->severity_label.level;
      a->row.last_event_id = ev->event_id;
    }
    a->stopped = true;
    commit(*a);
    const bool notify = provide_v || a->row.attestation_count.value_or(0) > 0;
    const storage::VerifierAgent snapshot = a->row;
    std::optional<Event> event = ev ? std::optional(*ev) : std::nullopt;
    al.unlock();
    if (notify) notify_revocation(snapshot, "comm_error", event ? &*event : nullptr);
    return;
  }
  a->row.operational_state = static_cast<int>(provide_v ? State::provide_v_retry : State::get_quote_retry);
  if (!provide_v) a->partial0 = true;
  commit(*a);
  const double delay = retry_delay(settings_.exponential_backoff, settings_.retry_interval, a->retries);
  log_->info("Agent {}: {} ({}), retry {} of {} in {:.1f}s", a->row.agent_id,
             provide_v ? "V delivery failed" : "quote request failed", why, a->retries, settings_.max_retries, delay);
  al.unlock();
  if (provide_v) {
    auto timer = loop_.schedule_after(std::chrono::milliseconds(static_cast<long long>(delay * 1000.0)),
                                      [this, a, gen] { deliver_v(a, gen); });
    std::lock_guard l(a->m);
    a->timer = timer;
  } else {
    schedule(a, delay, gen);
  }
}

void Poller::notify_revocation(const storage::VerifierAgent& failed_agent, const std::string& type, const kl::Event* event) {
  std::string body;
  try {
    const std::string msg = revocation_msg(failed_agent, type, event, static_cast<std::time_t>(now_()));
    body = revocation_body(msg, sign_revocation(msg, failed_agent.revocation_key.value_or("")));
  } catch (const std::exception& e) {
    log_->error("Agent {}: cannot build the revocation notification: {}", failed_agent.agent_id, e.what());
    return;
  }
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(settings_.request_timeout * 1000.0));
  if (settings_.revocations.notify_agents) {
    std::vector<std::pair<http::AsyncTarget, std::string>> targets;
    {
      std::lock_guard lk(agents_mutex_);
      for (auto& [id, other] : agents_) {
        if (id == failed_agent.agent_id) continue;
        std::lock_guard al(other->m);
        targets.emplace_back(other->target, other->row.supported_version.value_or(current_api_version()));
      }
    }
    for (auto& [target, version] : targets)
      client_.request(target, "POST", "/v" + version + "/notifications/revocation", body, timeout,
                      [this](std::optional<http::ClientResponse> r, std::string err) {
                        if (!r || r->status != 200)
                          log_->warn("Revocation notification to an agent failed: {}", r ? std::to_string(r->status) : err);
                      });
  }
  if (settings_.revocations.notify_webhook && !settings_.revocations.webhook_url.empty()) {
    const std::string url = settings_.revocations.webhook_url;
    const std::string agent_id = failed_agent.agent_id;
    const bool queued = webhook_.send(url, body, [this, url, agent_id](bool delivered, int attempts, const std::string& why) {
      if (delivered)
        log_->info("Agent {}: revocation delivered to webhook {} (attempt {})", agent_id, url, attempts);
      else
        log_->error("Agent {}: revocation webhook {} failed after {} attempt(s): {}", agent_id, url, attempts, why);
    });
    if (!queued) log_->error("Revocation webhook_url '{}' is not an http(s) URL", url);
  }
}

}  // namespace kl::verifier
