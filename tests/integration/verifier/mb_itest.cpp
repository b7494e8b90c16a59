// Measured boot end to end: real keylime_verifier / keylime_registrar processes, agents whose PCRs were extended
// from the sample UEFI event logs of testdata/keylime/mb and which serve the log as mb_measurement_list.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/agent_server.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/mb/event_log.hpp"
#include "integration/verifier/deployment.hpp"
#include "support/swtpm.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
using namespace kl::itest;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

kl::Bytes secureboot_log() {
  const std::string s = read_file(std::string(KL_TESTDATA_DIR) + "/keylime/mb/binary_bios_measurements-secureboot");
  return kl::Bytes(s.begin(), s.end());
}

// PCRs 0-9 and 11-15: what the tenant puts in the mask for a measured-boot policy.
const char* const kMbMask = "{\"mask\": \"0xfbff\"}";

struct MbAgent {
  kl::testing::SoftwareAgent id;
  std::unique_ptr<kl::testing::AgentServer> server;
  std::string uuid;
  MbAgent(Deployment& d, const std::string& name, const kl::Bytes& extend_from, const kl::Bytes& serve) : uuid(name) {
    kl::testing::AgentServerOptions o;
    o.uuid = name;
    o.trusted_client_ca_file = d.cacert();
    server = std::make_unique<kl::testing::AgentServer>(o, id);
    server->measure_boot(extend_from);
    server->api().set_mb_log(serve);
    server->start();
    if (!d.register_agent(id, name, *server).ok()) throw std::runtime_error("registration of " + name + " failed");
  }
  int add(kl::http::Client& tenant, const std::string& refstate) {
    json b = add_body(id, server->port(), server->mtls_cert_pem(), kMbMask);
    b["mb_policy"] = refstate;
    return tenant.request("POST", "/v2.6/agents/" + uuid, b.dump()).status;
  }
};

}  // namespace

TEST_CASE("measured boot (example policy): the log's own refstate passes, tampered logs and foreign refstates fail") {
  Deployment d("measured_boot_policy_name = example\n");
  auto tenant = d.tenant();
  const kl::Bytes log = secureboot_log();
  const std::string rhel = read_file(std::string(KL_SOURCE_DIR) + "/policies/mb/rhel9-ovmf-secureboot.json");

  MbAgent good(d, "mb-good", log, log);
  kl::Bytes tampered = log;
  {
    const auto parsed = kl::mb::parse_event_log(log);
    for (const auto& e : parsed.events)
      if (e.pcr == 4 && e.type != kl::mb::ev::kNoAction) {
        tampered[e.offset + 14] ^= 0xff;   // first digest of the first PCR 4 event
        break;
      }
  }
  MbAgent bad(d, "mb-tampered", log, tampered);
  MbAgent foreign(d, "mb-foreign", log, log);

  REQUIRE(good.add(tenant, rhel) == 200);
  REQUIRE(bad.add(tenant, rhel) == 200);
  REQUIRE(foreign.add(tenant, read_file(std::string(KL_TESTDATA_DIR) + "/keylime/mb/example_reference_state.json")) ==
          200);
  INFO(d.verifier->log());
  REQUIRE(eventually([&] { return attestation_count(tenant, "mb-good") >= 2; }, 30s));
  json s = agent_status(tenant, "mb-good");
  CHECK(s["operational_state"] == 3);
  CHECK(s["has_mb_refstate"] == 1);

  REQUIRE(eventually([&] { return agent_status(tenant, "mb-tampered")["operational_state"] == 9; }, 30s));
  CHECK(agent_status(tenant, "mb-tampered")["last_event_id"] == "measured_boot.invalid_pcr_4");
  REQUIRE(eventually([&] { return agent_status(tenant, "mb-foreign")["operational_state"] == 9; }, 30s));
  CHECK(agent_status(tenant, "mb-foreign")["last_event_id"] == "measured_boot.policy_example");
  CHECK(agent_status(tenant, "mb-foreign")["attestation_count"] == 0);
}

TEST_CASE("measured boot (accept-all, the default): any refstate passes when the log replays - a PCR outside it fails") {
  Deployment d;
  auto tenant = d.tenant();
  const kl::Bytes log = secureboot_log();
  MbAgent a(d, "mb-accept", log, log);
  REQUIRE(a.add(tenant, read_file(std::string(KL_TESTDATA_DIR) + "/keylime/mb/example_reference_state.json")) == 200);
  INFO(d.verifier->log());
  REQUIRE(eventually([&] { return attestation_count(tenant, "mb-accept") >= 2; }, 30s));
  a.server->pcr_extend(7, kl::Bytes(32, 0x77));   // e.g. a Secure Boot variable changed without a log entry
  REQUIRE(eventually([&] { return agent_status(tenant, "mb-accept")["operational_state"] == 9; }, 30s));
  CHECK(agent_status(tenant, "mb-accept")["last_event_id"] == "measured_boot.invalid_pcr_7");
}

TEST_CASE("measured boot on swtpm: PCRs extended from the sample log attest with its refstate - a tampered log fails") {
  REQUIRE(kl::testing::Swtpm::available());
  Deployment d("measured_boot_policy_name = example\n");
  auto tenant = d.tenant();
  const kl::Bytes log = secureboot_log();
  const std::string refstate = read_file(std::string(KL_SOURCE_DIR) + "/policies/mb/rhel9-ovmf-secureboot.json");

  kl::testing::Swtpm swtpm;
  kl::testing::TpmAgent tpm(swtpm.tcti());
  kl::testing::AgentServerOptions o;
  o.uuid = "mb-swtpm";
  o.trusted_client_ca_file = d.cacert();
  kl::testing::AgentServer agent(o, tpm);
  agent.measure_boot(log);   // the firmware's measurements, into the real (software) TPM's PCRs
  agent.start();
  REQUIRE(d.register_agent(tpm, o.uuid, agent).ok());

  json b = add_body(tpm, agent.port(), agent.mtls_cert_pem(), kMbMask);
  b["mb_policy"] = refstate;
  REQUIRE(tenant.request("POST", "/v2.6/agents/" + o.uuid, b.dump()).status == 200);
  INFO(d.verifier->log());
  REQUIRE(eventually([&] { return attestation_count(tenant, o.uuid) >= 2; }, 30s));
  CHECK(agent_status(tenant, o.uuid)["operational_state"] == 3);

  // The agent now serves a log whose kernel (PCR 4) digest was changed: replay no longer gives the quoted PCR 4.
  kl::Bytes tampered = log;
  for (const auto& e : kl::mb::parse_event_log(log).events)
    if (e.pcr == 4 && e.type != kl::mb::ev::kNoAction) {
      tampered[e.offset + 14] ^= 0xff;
      break;
    }
  agent.api().set_mb_log(tampered);
  REQUIRE(eventually([&] { return agent_status(tenant, o.uuid)["operational_state"] == 9; }, 30s));
  CHECK(agent_status(tenant, o.uuid)["last_event_id"] == "measured_boot.invalid_pcr_4");
}
