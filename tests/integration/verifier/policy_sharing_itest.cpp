// Runtime and measured-boot policies shared by several agents (the poller's policy cache) and policy updates
// through /allowlists picked up by the agents using them; in-process verifier, agents over real mTLS.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/evidence_logs.hpp"
#include "integration/verifier/in_process_verifier.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace kl::itest;
using kl::testing::ima_ng_line;

namespace {

json ima_add_body(TestAgent& a, const std::string& policy_name) {
  json b = a.add_body("");
  b["tpm_policy"] = "{\"mask\": \"0x400\"}";
  b["runtime_policy_name"] = policy_name;
  return b;
}

json allowlist_body(const json& policy) {
  return json{{"runtime_policy", kl::base64_encode(kl::as_bytes(policy.dump()))}, {"runtime_policy_key", nullptr},
              {"tpm_policy", nullptr}};
}

}  // namespace

TEST_CASE("policy cache: one compiled runtime policy for many agents - an /allowlists update is picked up") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  const std::vector<kl::testing::ImaLine> boot = {ima_ng_line("boot_aggregate", "boot"),
                                                  ima_ng_line("/usr/bin/bash", "bash")};
  REQUIRE(v.call("POST", "/v2.6/allowlists/golden", allowlist_body(kl::testing::runtime_policy_for(boot)).dump())
              .status == 201);

  std::vector<std::unique_ptr<TestAgent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(std::make_unique<TestAgent>("shared-" + std::to_string(i), v.cacert()));
    for (const auto& l : boot) agents.back()->server->measure(l);
    const auto r = v.call("POST", "/v2.6/agents/shared-" + std::to_string(i), ima_add_body(*agents.back(), "golden").dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
  }
  INFO(v.log_text());
  REQUIRE(eventually([&] {
    for (int i = 0; i < 3; ++i)
      if (count_of(v, "shared-" + std::to_string(i)) < 2) return false;
    return true;
  }));
  auto st = v.poller->policy_cache().stats();
  CHECK(st.runtime_compiles == 1);   // compiled once, shared by the three agents
  CHECK(st.runtime_live == 1);

  // The policy grows by one tool; the agents run it and stay trusted only if the verifier uses the new version.
  const auto tool = ima_ng_line("/opt/tool", "tool");
  auto allowed = boot;
  allowed.push_back(tool);
  REQUIRE(v.call("PUT", "/v2.6/allowlists/golden", allowlist_body(kl::testing::runtime_policy_for(allowed)).dump())
              .status == 201);
  for (auto& a : agents) a->server->measure(tool);
  const long long c0 = count_of(v, "shared-0");
  REQUIRE(eventually([&] { return count_of(v, "shared-0") >= c0 + 3; }));
  for (int i = 0; i < 3; ++i) CHECK(v.show("shared-" + std::to_string(i))["operational_state"] == 3);
  st = v.poller->policy_cache().stats();
  CHECK(st.runtime_compiles == 2);
  CHECK(st.runtime_live == 1);       // the old version was released by every agent

  // A file outside both versions still fails, naming the file in the log.
  agents[1]->server->measure(ima_ng_line("/root/evil.sh", "evil"));
  REQUIRE(eventually([&] { return v.show("shared-1")["operational_state"] == 9; }));
  CHECK(v.show("shared-1")["last_event_id"] == "ima.validation.ima-ng.not_in_allowlist");
  CHECK(v.log_text().find("/root/evil.sh") != std::string::npos);
  CHECK(v.show("shared-0")["operational_state"] == 3);
}

TEST_CASE("policy cache: an agent's own policy goes with the agent - a deleted agent's row id is not confused") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  const std::vector<kl::testing::ImaLine> boot = {ima_ng_line("boot_aggregate", "boot")};
  for (int round = 0; round < 2; ++round) {
    TestAgent a("own-policy", v.cacert());
    for (const auto& l : boot) a.server->measure(l);
    if (round == 1) a.server->measure(ima_ng_line("/usr/bin/second", "second"));
    json b = a.add_body("");
    b["tpm_policy"] = "{\"mask\": \"0x400\"}";
    auto allowed = boot;
    if (round == 1) allowed.push_back(ima_ng_line("/usr/bin/second", "second"));
    b["runtime_policy"] = kl::base64_encode(kl::as_bytes(kl::testing::runtime_policy_for(allowed).dump()));
    REQUIRE(v.call("POST", "/v2.6/agents/own-policy", b.dump()).status == 200);
    INFO(v.log_text());
    REQUIRE(eventually([&] { return count_of(v, "own-policy") >= 2; }));
    CHECK(v.show("own-policy")["operational_state"] == 3);
    const auto del = v.call("DELETE", "/v2.6/agents/own-policy");
    REQUIRE((del.status == 200 || del.status == 202));
    REQUIRE(eventually([&] { return v.call("GET", "/v2.6/agents/own-policy").status == 404; }));
  }
}

TEST_CASE("IMA across an agent reboot: the verifier notices the new boottime and replays the new log from entry 0") {
  kl::testing::TempDir dir;
  Verifier v(dir.path());
  TestAgent a("rebooting", v.cacert());
  const std::vector<kl::testing::ImaLine> files = {ima_ng_line("boot_aggregate", "boot"),
                                                   ima_ng_line("/usr/bin/bash", "bash"),
                                                   ima_ng_line("/usr/bin/ls", "ls"),
                                                   ima_ng_line("/usr/bin/cat", "cat")};
  for (int i = 0; i < 3; ++i) a.server->measure(files[i]);
  json b = a.add_body("");
  b["tpm_policy"] = "{\"mask\": \"0x400\"}";
  b["runtime_policy"] = kl::base64_encode(kl::as_bytes(kl::testing::runtime_policy_for(files).dump()));
  REQUIRE(v.call("POST", "/v2.6/agents/rebooting", b.dump()).status == 200);
  INFO(v.log_text());
  REQUIRE(eventually([&] { return count_of(v, "rebooting") >= 2; }));
  REQUIRE(a.server->api().ima_entries_requested().back() == 3);

  // Reboot: PCRs and the IMA log start over, a new boot time; the new log is longer than the old offset.
  a.server->software_tpm()->reboot();
  a.server->api().set_ima_log("");
  a.server->api().set_boottime(1800000000);
  for (const auto& l : files) a.server->measure(l);
  const std::size_t before = a.server->api().ima_entries_requested().size();
  const long long c = count_of(v, "rebooting");
  REQUIRE(eventually([&] { return count_of(v, "rebooting") >= c + 2; }));
  const auto asked = a.server->api().ima_entries_requested();
  CHECK(std::find(asked.begin() + static_cast<long>(before), asked.end(), 0) != asked.end());
  CHECK(asked.back() == 4);
  const json s = v.show("rebooting");
  CHECK(s["operational_state"] == 3);
  CHECK(s["last_event_id"].is_null());
  CHECK(v.store->find_agent("rebooting")->boottime == 1800000000);
}
