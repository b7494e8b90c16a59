// The poller against test agents over real mTLS sockets (AgentServer with a software TPM), a real SQLite file,
// the tenant API called through VerifierService. The verifier's client certificate comes from a generated cv_ca.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "agent/agent_server.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/service/config/config.hpp"
#include "common/service/http/async_client.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/loop/event_loop.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "support/temp_dir.hpp"
#include "verifier/poller.hpp"
#include "verifier/verifier_service.hpp"
#include "integration/verifier/in_process_verifier.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

using namespace kl::itest;
const std::string kZero = kl::itest::kZero64;

TEST_CASE("poller: add -> attesting over mTLS, V delivered, PCR change -> invalid_pcr_15 and revocation") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-a", v.cacert());
  TestAgent b("agent-b", v.cacert());
  const kl::Bytes V(32, 0x5a);
  const auto [priv, pub] = rsa_keypair_pem();

  REQUIRE(v.call("POST", "/v2.6/agents/agent-a", a.add_body(kl::base64_encode(V), priv).dump()).status == 200);
  REQUIRE(v.call("POST", "/v2.6/agents/agent-b", b.add_body(kl::base64_encode(V)).dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-a") >= 3 && count_of(v, "agent-b") >= 1; }));
  json s = v.show("agent-a");
  CHECK(s["operational_state"] == 3);
  CHECK(s["attestation_status"] == "PASS");
  CHECK(s["hash_alg"] == "sha256");
  CHECK(s["sign_alg"] == "ecdsa");
  CHECK(s["last_successful_attestation"].get<long long>() > 0);
  REQUIRE(a.server->api().v_key());
  CHECK(*a.server->api().v_key() == V);
  // Committed to the database, not just in memory.
  CHECK(v.store->find_agent("agent-a")->attestation_count.value_or(0) >= 3);

  a.server->pcr_extend(15, kl::Bytes(32, 1));
  REQUIRE(eventually([&] { return v.show("agent-a")["operational_state"] == 9; }));
  s = v.show("agent-a");
  CHECK(s["last_event_id"] == "pcr_validation.invalid_pcr_15");
  CHECK(s["severity_level"] == 6);
  CHECK(s["attestation_status"] == "FAIL");
  // The other agent was told, with a message signed by agent-a's revocation key.
  REQUIRE(eventually([&] { return !b.server->api().revocations().empty(); }));
  const json note = b.server->api().revocations().at(0);
  const json msg = json::parse(note["msg"].get<std::string>());
  CHECK(msg["type"] == "revocation");
  CHECK(msg["agent_id"] == "agent-a");
  CHECK(msg["event_id"] == "pcr_validation.invalid_pcr_15");
  CHECK_FALSE(note["signature"].get<std::string>().empty());
  // Polling stopped (emergency = highest label): the count no longer moves.
  const auto served = a.server->api().quotes_served();
  std::this_thread::sleep_for(800ms);
  CHECK(a.server->api().quotes_served() == served);
  CHECK(count_of(v, "agent-b") >= 1);
}

TEST_CASE("poller: wrong nonce, tampered quote, swapped AK -> qoute_validation.quote_validation") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-n", v.cacert());
  kl::testing::AgentHooks h;
  SECTION("wrong nonce") { h.quote_nonce = "ZZZZZZZZZZZZZZZZZZZZ"; }
  SECTION("tampered quote") { h.tamper_quote = true; }
  SECTION("swapped AK") { h.swap_ak = true; }
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-n", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return v.show("agent-n")["operational_state"] == 9; }));
  CHECK(v.show("agent-n")["last_event_id"] == "qoute_validation.quote_validation");
  CHECK(v.show("agent-n")["attestation_count"] == 0);
}

TEST_CASE("poller: agent down -> retries then FAILED - back + reactivate -> attesting - delete stops polling") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-d", v.cacert());
  REQUIRE(v.call("POST", "/v2/agents/agent-d", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-d") >= 2; }));

  a.server->stop();
  REQUIRE(eventually([&] { return v.show("agent-d")["operational_state"] == 7; }));
  json s = v.show("agent-d");
  CHECK(s["last_event_id"] == "internal.verifier.not_reachable");
  CHECK(s["attestation_status"] == "FAIL");

  a.server->start();
  REQUIRE(v.call("PUT", "/v2/agents/agent-d/reactivate").status == 200);
  const long long before = count_of(v, "agent-d");
  REQUIRE(eventually([&] { return count_of(v, "agent-d") >= before + 2; }));
  CHECK(v.show("agent-d")["operational_state"] == 3);

  REQUIRE(v.call("PUT", "/v2/agents/agent-d/stop").status == 200);
  CHECK(v.show("agent-d")["operational_state"] == 10);
  auto served = a.server->api().quotes_served();
  std::this_thread::sleep_for(700ms);
  CHECK(a.server->api().quotes_served() <= served + 1);   // at most the request already in flight

  REQUIRE(v.call("PUT", "/v2/agents/agent-d/reactivate").status == 200);
  REQUIRE(eventually([&] { return v.show("agent-d")["operational_state"] == 3; }));
  const auto del = v.call("DELETE", "/v2/agents/agent-d");
  CHECK((del.status == 200 || del.status == 202));
  REQUIRE(eventually([&] { return v.call("GET", "/v2/agents/agent-d").status == 404; }));
  served = a.server->api().quotes_served();
  std::this_thread::sleep_for(700ms);
  CHECK(a.server->api().quotes_served() == served);
}

TEST_CASE("poller: quote failures from the agent (HTTP 500) are retried like a dead agent") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-e", v.cacert());
  kl::testing::AgentHooks h;
  h.fail_quotes_with = 500;
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-e", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return v.show("agent-e")["operational_state"] == 7; }));
  CHECK(a.server->api().quotes_served() <= 10);
  CHECK(v.show("agent-e")["last_event_id"] == "internal.verifier.not_reachable");
}

TEST_CASE("poller: API version renegotiation on 'API version not supported'") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("agent-r", v.cacert());
  kl::testing::AgentHooks h;
  h.api_versions = std::vector<std::string>{"2.1", "2.2"};
  a.server->api().set_hooks(h);
  REQUIRE(v.call("POST", "/v2/agents/agent-r", a.add_body("").dump()).status == 200);
  REQUIRE(eventually([&] { return count_of(v, "agent-r") >= 2; }));
  CHECK(v.store->find_agent("agent-r")->supported_version == "2.2");
}

TEST_CASE("poller: a restarted verifier resumes every agent from the database") {
  kl::testing::TempDir dir;
  TestAgent a("agent-1", "");
  TestAgent b("agent-2", "");
  {
    Verifier v(dir.path());
    REQUIRE(v.call("POST", "/v2/agents/agent-1", a.add_body("").dump()).status == 200);
    REQUIRE(v.call("POST", "/v2/agents/agent-2", b.add_body("").dump()).status == 200);
    REQUIRE(eventually([&] { return count_of(v, "agent-1") >= 2 && count_of(v, "agent-2") >= 2; }));
  }
  Verifier v2(dir.path());
  const long long c1 = count_of(v2, "agent-1"), c2 = count_of(v2, "agent-2");
  CHECK(v2.poller->resume_all() == 2);
  REQUIRE(eventually([&] { return count_of(v2, "agent-1") >= c1 + 2 && count_of(v2, "agent-2") >= c2 + 2; }, 5s));
}
