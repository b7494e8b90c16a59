// The Prometheus text format writer and parser, the counters/histograms behind them, and the verifier's
// GET /metrics through VerifierService::handle() with a real SQLite store.
#include <catch2/catch.hpp>

#include <cmath>
#include <thread>

#include "common/service/config/config.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/metrics/exposition.hpp"
#include "common/service/metrics/histogram.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "support/temp_dir.hpp"
#include "verifier/metrics_handler.hpp"
#include "verifier/poller.hpp"
#include "verifier/verifier_config.hpp"
#include "verifier/verifier_service.hpp"

using namespace kl::metrics;

TEST_CASE("histogram: le buckets, cumulative exposition, sum and count", "[metrics]") {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 2.0, 20.0, 1.0}) h.observe(v);
  const auto s = h.snapshot();
  CHECK(s.counts == std::vector<std::uint64_t>{2, 2, 1, 1});  // 0.1 and 1.0 fall in their own "le" bucket
  CHECK(s.count() == 6);
  CHECK(s.sum == Approx(23.65));

  Exposition out;
  out.histogram("x_seconds", "a histogram", s);
  const auto scrape = parse_exposition(out.text());
  CHECK(scrape.types.at("x_seconds") == "histogram");
  CHECK(scrape.at("x_seconds_bucket{le=\"0.1\"}") == 2);
  CHECK(scrape.at("x_seconds_bucket{le=\"1\"}") == 4);
  CHECK(scrape.at("x_seconds_bucket{le=\"10\"}") == 5);
  CHECK(scrape.at("x_seconds_bucket{le=\"+Inf\"}") == 6);
  CHECK(scrape.at("x_seconds_count") == 6);
  CHECK(scrape.at("x_seconds_sum") == Approx(23.65));
}

TEST_CASE("histogram and counters are safe under concurrent updates", "[metrics]") {
  Histogram h(Histogram::latency_bounds());
  Counter c;
  LabelledCounter lc;
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        h.observe(0.001 * (i % 7));
        c.inc();
        lc.inc({"t" + std::to_string(t % 2)});
      }
    });
  for (auto& x : th) x.join();
  CHECK(h.snapshot().count() == 40000);
  CHECK(c.value() == 40000);
  CHECK(lc.values().at({"t0"}) == 20000);
  CHECK(lc.values().at({"t1"}) == 20000);
}

TEST_CASE("labelled counter: distinct label values are capped", "[metrics]") {
  LabelledCounter lc(3);
  for (int i = 0; i < 10; ++i) lc.inc({"ev" + std::to_string(i), "x"});
  const auto v = lc.values();
  CHECK(v.size() == 4);
  CHECK(v.at({"ev0", "x"}) == 1);
  CHECK(v.at({"other", "other"}) == 7);
}

TEST_CASE("exposition: labels escaped, HELP/TYPE once per family, parsed back exactly", "[metrics]") {
  Exposition out;
  out.counter("kl_events_total", "events\nby id", {{{{"event_id", "a\"b\\c\nd"}, {"code", "7"}}, 3}, {{{"event_id", "plain"}}, 1.5}});
  out.gauge("kl_up", "up", 1);
  const std::string& t = out.text();
  CHECK(t.find("# HELP kl_events_total events\\nby id\n# TYPE kl_events_total counter\n") == 0);
  CHECK(t.find("kl_events_total{event_id=\"a\\\"b\\\\c\\nd\",code=\"7\"} 3\n") != std::string::npos);
  const auto s = parse_exposition(t);
  CHECK(s.samples.size() == 3);
  CHECK(s.at("kl_events_total{event_id=\"a\"b\\c\nd\",code=\"7\"}") == 3);
  CHECK(s.at("kl_events_total{event_id=\"plain\"}") == 1.5);
  CHECK(s.at("kl_up") == 1);
  CHECK(s.types.at("kl_up") == "gauge");
  // Timestamps and special values are accepted.
  const auto s2 = parse_exposition("a 1 1700000000000\nb +Inf\nc NaN\nd -2.5e-3\n");
  CHECK(std::isinf(s2.at("b")));
  CHECK(std::isnan(s2.at("c")));
  CHECK(s2.at("d") == Approx(-0.0025));
}

TEST_CASE("exposition parser rejects malformed text with the line number", "[metrics]") {
  const char* bad[] = {
      "1abc 3\n",                      // name starts with a digit
      "abc\n",                         // no value
      "abc{x=\"1\" 3\n",               // unterminated label set
      "abc{x=1} 3\n",                  // unquoted label value
      "abc{x=\"1} 3\n",                // unterminated label value
      "abc{x=\"\\q\"} 3\n",            // bad escape
      "abc{1x=\"1\"} 3\n",             // bad label name
      "abc 3x\n",                      // bad number
      "abc 1\nabc 2\n",                // duplicate series
      "# TYPE abc countr\n",           // unknown type
      "# TYPE abc counter\n# TYPE abc gauge\n",
      "abc{x=\"1\"y=\"2\"} 1\n",       // missing comma
  };
  for (const char* b : bad) {
    INFO(b);
    CHECK_THROWS_AS(parse_exposition(b), ParseError);
  }
  CHECK_THROWS_WITH(parse_exposition("ok 1\n\nbad\n"), Catch::Contains("line 3"));
}

namespace {

struct VerifierFixture {
  kl::testing::TempDir dir;
  kl::verifier::VerifierSettings settings;
  std::unique_ptr<kl::storage::VerifierStore> store;
  kl::verifier::RegistrarLookupFn registrar;
  std::unique_ptr<kl::verifier::VerifierService> service;

  explicit VerifierFixture(const std::string& ini = "") {
    std::map<std::string, std::string> env{{"KEYLIME_DIR", dir.path().string()}};
    settings = kl::verifier::load_settings(kl::config::Config::from_string("verifier", ini, env), env);
    store = kl::storage::open_verifier_store("sqlite", dir.path());
    service = std::make_unique<kl::verifier::VerifierService>(
        settings, *store, nullptr, registrar, kl::log::make_logger("metrics-test", {{"KEYLIME_LOG_LEVEL", "ERROR"}}));
  }
  kl::http::Response get(const std::string& path, bool tls, bool cert) {
    kl::http::Request r;
    r.method = "GET";
    r.target = r.path = path;
    r.tls = tls;
    if (cert) r.peer = kl::http::PeerCertificate{true, "tenant", ""};
    return service->handle(r);
  }
  void add(const std::string& id, int state, const std::string& verifier = "default") {
    kl::storage::VerifierAgent a;
    a.agent_id = id;
    a.operational_state = state;
    a.verifier_id = verifier;
    store->add_agent(a, std::nullopt, std::nullopt);
  }
};

}  // namespace

TEST_CASE("verifier GET /metrics: mTLS only, agents by state of this verifier_id, requests, store", "[metrics]") {
  VerifierFixture f;
  f.add("a1", 3);
  f.add("a2", 3);
  f.add("a3", 9);
  f.add("other-verifier", 3, "v2");

  CHECK(f.get("/metrics", true, false).status == 403);  // no client certificate
  CHECK(f.get("/metrics", false, false).status == 403);
  CHECK(f.get("/version", true, false).status == 200);

  const auto r = f.get("/metrics", true, true);
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
  const auto s = parse_exposition(r.body);
  CHECK(s.at("keylime_verifier_agents{state=\"Get Quote\",code=\"3\"}") == 2);
  CHECK(s.at("keylime_verifier_agents{state=\"Invalid Quote\",code=\"9\"}") == 1);
  CHECK(s.at("keylime_verifier_agents{state=\"Registered\",code=\"0\"}") == 0);
  CHECK(s.at("keylime_http_requests_total{action=\"read_metrics\",code=\"403\"}") == 2);
  CHECK(s.at("keylime_http_requests_total{action=\"version\",code=\"200\"}") == 1);
  CHECK(s.at("keylime_db_info{backend=\"sqlite\"}") == 1);
  CHECK(s.at("keylime_db_operation_duration_seconds_count") >= 5);  // 4 adds + the count query
  CHECK(s.at("keylime_db_errors_total") == 0);
  CHECK_FALSE(s.has("keylime_verifier_quotes_verified_total"));  // no poller in this service
}

TEST_CASE("verifier poller stats as metrics: lateness re-bucketed, failures by event id", "[metrics]") {
  kl::verifier::PollerStats st;
  st.agents = 2;
  st.quotes_requested = 10;
  st.quotes_verified = 7;
  st.quotes_failed = 3;
  st.lateness_10ms.assign(1001, 0);
  st.lateness_10ms[0] = 5;     // < 10 ms
  st.lateness_10ms[4] = 2;     // 40-50 ms
  st.lateness_10ms[1000] = 1;  // >= 10 s
  st.failures_by_event = {{"tpm.quote.pcr_mismatch", 2}, {"", 1}};
  kl::metrics::Histogram vt({0.001, 0.01});
  vt.observe(0.0005);
  st.verification_seconds = vt.snapshot();
  kl::metrics::Exposition out;
  kl::verifier::write_poller_stats(out, st);
  const auto s = parse_exposition(out.text());
  CHECK(s.at("keylime_verifier_quotes_verified_total") == 7);
  CHECK(s.at("keylime_verifier_quotes_failed_total") == 3);
  CHECK(s.at("keylime_verifier_attestation_failures_total{event_id=\"tpm.quote.pcr_mismatch\"}") == 2);
  CHECK(s.at("keylime_verifier_attestation_failures_total{event_id=\"none\"}") == 1);
  CHECK(s.at("keylime_verifier_poll_lateness_seconds_bucket{le=\"0.01\"}") == 5);
  CHECK(s.at("keylime_verifier_poll_lateness_seconds_bucket{le=\"0.025\"}") == 5);
  CHECK(s.at("keylime_verifier_poll_lateness_seconds_bucket{le=\"0.05\"}") == 7);
  CHECK(s.at("keylime_verifier_poll_lateness_seconds_bucket{le=\"10\"}") == 7);
  CHECK(s.at("keylime_verifier_poll_lateness_seconds_bucket{le=\"+Inf\"}") == 8);
  CHECK(s.at("keylime_verifier_verification_duration_seconds_count") == 1);
  CHECK(s.at("keylime_verifier_polled_agents") == 2);
}

TEST_CASE("verifier metrics_port: plain listener serves only /metrics", "[metrics]") {
  VerifierFixture f("[verifier]\nmetrics_port = 0\n");
  CHECK(f.service->metrics_port() == 0);
  CHECK_THROWS_AS(VerifierFixture("[verifier]\nmetrics_port = 70000\n"), kl::config::ConfigError);
  CHECK_THROWS_AS(VerifierFixture("[verifier]\nmetrics_port = abc\n"), kl::config::ConfigError);
  CHECK_THROWS_AS(VerifierFixture("[verifier]\ndatabase_url = postgresql://u@h/db\ndatabase_pool_sz_ovfl = x\n"),
                  kl::config::ConfigError);
}

#include "registrar/registrar_config.hpp"

TEST_CASE("config: metrics_port and database_pool_sz_ovfl for both services", "[metrics][config]") {
  const std::map<std::string, std::string> env{{"KEYLIME_DIR", "/tmp/kl-none"}};
  auto reg = [&](const std::string& ini) {
    return kl::registrar::load_settings(kl::config::Config::from_string("registrar", ini, env),
                                        kl::config::Config::from_string("tenant", "", env), env);
  };
  auto ver = [&](const std::string& ini) {
    return kl::verifier::load_settings(kl::config::Config::from_string("verifier", ini, env), env);
  };
  // Defaults: no plain metrics listener; SQLite URLs untouched; upstream's pool default 5 for PostgreSQL.
  CHECK(reg("[registrar]\n").metrics_port == 0);
  CHECK(reg("[registrar]\n").database_url == "sqlite");
  CHECK(reg("[registrar]\n").warnings.empty());
  CHECK(ver("[verifier]\n").metrics_port == 0);
  CHECK(reg("[registrar]\ndatabase_url = postgresql://k:p@127.0.0.1:5432/keylime\n").database_url ==
        "postgresql://k:p@127.0.0.1:5432/keylime?pool_size=5");
  CHECK(ver("[verifier]\ndatabase_url = postgresql://k:p@h/db\ndatabase_pool_sz_ovfl = 8,2\n").database_url ==
        "postgresql://k:p@h/db?pool_size=8");
  const auto r = reg("[registrar]\nmetrics_port = 9101\n");
  CHECK(r.metrics_port == 9101);
  CHECK(r.warnings.empty());  // a known key
  const auto v = ver("[verifier]\nmetrics_port = 9102\n");
  CHECK(v.metrics_port == 9102);
  CHECK(v.warnings.empty());
  CHECK_THROWS_WITH(reg("[registrar]\nmetrics_port = 65536\n"), Catch::Contains("metrics_port"));
  CHECK_THROWS_WITH(reg("[registrar]\ndatabase_url = postgresql://h/db\ndatabase_pool_sz_ovfl = none\n"),
                    Catch::Contains("database_pool_sz_ovfl"));
}
