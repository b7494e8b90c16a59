// keylime_registrar as a process, over real HTTP/mTLS, with real swtpm-backed and software agents.
#include <catch2/catch.hpp>

#include <filesystem>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "running_registrar.hpp"
#include "support/cert_issue.hpp"
#include "support/swtpm.hpp"
#include "common/service/tls/tls_dir.hpp"
#include <fstream>

using namespace kl::testing;
using regitest::RunningRegistrar;

namespace {

nlohmann::json parse(const std::string& body) { return nlohmann::json::parse(body); }

void check_tpm_enrollment(bool ecc, RegisterOptions::Style style) {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipping the TPM-backed registration");
    return;
  }
  Swtpm::Options so;
  so.ecc_ek = ecc;
  Swtpm tpm(so);
  TpmAgent agent(tpm.tcti(), ecc ? TpmAgent::EkAlg::ecc_p256 : TpmAgent::EkAlg::rsa2048);
  REQUIRE(agent.ek_certificate_der().has_value());

  regitest::RegistrarOptions ro;
  ro.tpm_cert_store = tpm.ca_store_dir();   // the swtpm local CA: the EK chain check (enforce) passes
  RunningRegistrar reg(ro);
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = ecc ? "d432fbb3-d2f1-4a97-9ef7-ecc000000001" : "d432fbb3-d2f1-4a97-9ef7-rsa000000001";
  o.style = style;
  if (style == RegisterOptions::Style::python_6_7) o.api_version = "2.1";
  RegistrationOutcome out = register_and_activate(client, agent, o);
  INFO(reg.log());
  INFO(out.error);
  CHECK(out.register_status == 200);
  CHECK(out.activate_status == 200);
  CHECK(out.activate_reply == nlohmann::json{{"code", 200}, {"status", "Success"}, {"results", nlohmann::json::object()}});

  auto admin = reg.admin_client();
  auto list = admin.request("GET", "/v2.6/agents");
  REQUIRE(list.status == 200);
  CHECK(parse(list.body)["results"]["uuids"] == nlohmann::json::array({o.agent_id}));
  auto show = admin.request("GET", "/v" + o.api_version + "/agents/" + o.agent_id);
  REQUIRE(show.status == 200);
  auto res = parse(show.body)["results"];
  CHECK(res["aik_tpm"] == kl::base64_encode(agent.ak_tpm2b_public()));
  CHECK(res["ekcert"] == kl::base64_encode(*agent.ek_certificate_der()));
  CHECK(res["regcount"] == 1);
  CHECK(res["ip"] == "127.0.0.1");
  CHECK(res["port"] == 9002);
  // The stored EK's key is the TPM's EK key (derived from the certificate for the Python style).
  auto stored_ek = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(*kl::base64_decode(res["ek_tpm"].get<std::string>())));
  auto real_ek = kl::tpm::public_key(kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public()));
  CHECK(kl::tpm::spki_der(stored_ek.get()) == kl::tpm::spki_der(real_ek.get()));

  auto del = admin.request("DELETE", "/v2.6/agents/" + o.agent_id);
  CHECK(del.status == 200);
  CHECK(admin.request("GET", "/v2.6/agents/" + o.agent_id).status == 404);
  CHECK(reg.dump_db().empty());
}

}  // namespace

TEST_CASE("swtpm RSA EK, rust-keylime style: register, activate, list/show/delete over mTLS") {
  check_tpm_enrollment(false, RegisterOptions::Style::rust);
}

TEST_CASE("swtpm ECC EK, rust-keylime style") { check_tpm_enrollment(true, RegisterOptions::Style::rust); }

TEST_CASE("swtpm RSA EK, Python agent 6.7 style (no Content-Type, no ek_tpm, API 2.1)") {
  check_tpm_enrollment(false, RegisterOptions::Style::python_6_7);
}

TEST_CASE("admin routes: no client cert -> 403 JSON:API, plain HTTP -> 400 empty, foreign CA -> refused") {
  RunningRegistrar reg;
  auto anon = reg.tls_client();
  auto r = anon.request("GET", "/v2.6/agents");
  CHECK(r.status == 403);
  auto j = parse(r.body);
  CHECK(j["errors"][0]["detail"] == "Action list_registrations requires admin authentication (mTLS certificate)");
  CHECK(anon.request("GET", "/version").status == 200);   // public routes work without a client cert

  auto plain = reg.plain_client();
  auto p = plain.request("GET", "/v2.6/agents");
  CHECK(p.status == 400);
  CHECK(p.body.empty());
  CHECK(plain.request("DELETE", "/v2.6/agents/x").status == 400);

  TempDir other;
  auto issued = kl::tls::make_ca_and_leaf(other.path(), "other", "intruder");
  auto foreign = reg.tls_client(issued.cert.string(), issued.key.string());
  bool refused = false;
  try {
    auto f = foreign.request("GET", "/v2.6/agents");
    refused = f.status == 403;   // acceptable too: not treated as admin
  } catch (const std::exception&) {
    refused = true;   // handshake refused: the certificate does not chain to trusted_client_ca
  }
  CHECK(refused);
}

TEST_CASE("re-registration with another EK -> 403, same identity -> regcount 2") {
  RunningRegistrar reg;
  auto client = reg.plain_client();
  SoftwareAgent a, b;
  RegisterOptions o;
  o.agent_id = "sw-agent-1";
  REQUIRE(register_and_activate(client, a, o).ok());
  const std::string before = reg.dump_db();
  auto r = client.request("POST", "/v2.6/agents/sw-agent-1", registration_body(b, o).dump());
  CHECK(r.status == 403);
  CHECK(parse(r.body)["status"] == "Agent re-registration with different TPM identity is forbidden for security reasons");
  CHECK(reg.dump_db() == before);
  REQUIRE(register_and_activate(client, a, o).ok());
  auto show = reg.admin_client().request("GET", "/v2.6/agents/sw-agent-1");
  CHECK(parse(show.body)["results"]["regcount"] == 2);
}

TEST_CASE("EK certificate from an untrusted CA -> 400, issuer named in header and log") {
  RunningRegistrar reg;   // empty tpm_cert_store, ek_cert_chain_check = enforce (default)
  SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);
  TestCa ca = make_test_ca("Untrusted EK Vendor CA");
  agent.issue_ek_certificate(ca.key.get(), ca.cert.get());
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = "untrusted-ek";
  auto r = client.request("POST", "/v2.6/agents/untrusted-ek", registration_body(agent, o).dump());
  CHECK(r.status == 400);
  CHECK(parse(r.body)["status"] == "Could not register agent with invalid data");
  REQUIRE(r.headers.count("x-keylime-error") == 1);
  CHECK_THAT(r.headers["x-keylime-error"], Catch::Contains("EK certificate issuer") &&
                                               Catch::Contains("Untrusted EK Vendor CA") &&
                                               Catch::Contains("not found in tpm_cert_store"));
  CHECK_THAT(reg.log(), Catch::Contains("Untrusted EK Vendor CA"));
  CHECK(reg.dump_db().empty());
}

TEST_CASE("ek_cert_chain_check = off accepts an EK certificate from any CA (upstream behaviour)") {
  regitest::RegistrarOptions ro;
  ro.extra_config = "ek_cert_chain_check = off\n";
  RunningRegistrar reg(ro);
  SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);
  TestCa ca = make_test_ca("Any EK CA");
  agent.issue_ek_certificate(ca.key.get(), ca.cert.get());
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = "chain-off";
  CHECK(register_and_activate(client, agent, o).ok());
}

TEST_CASE("malformed registrations -> 4xx and the SQLite file unchanged") {
  regitest::RegistrarOptions ro;
  ro.extra_config = "max_upload_size = 65536\n";
  RunningRegistrar reg(ro);
  auto client = reg.plain_client();
  SoftwareAgent agent;
  RegisterOptions o;
  o.agent_id = "victim";
  REQUIRE(register_and_activate(client, agent, o).ok());
  const std::string before = reg.dump_db();
  const auto good = registration_body(agent, o);
  const kl::Bytes ak = agent.ak_tpm2b_public();

  auto post = [&](const std::string& id, const std::string& body) {
    return client.request("POST", "/v2.6/agents/" + id, body);
  };
  auto with = [&](const char* key, nlohmann::json v) {
    auto b = good;
    b[key] = std::move(v);
    return b.dump();
  };
  struct Case { const char* name; std::string id, body; int status; bool envelope; };
  std::string dup = good.dump();
  dup.insert(1, "\"aik_tpm\":\"AAAA\",");
  kl::Bytes truncated(ak.begin(), ak.end() - 7), oversized = ak, wrong_size = ak;
  oversized.resize(ak.size() + 3000, 0);
  wrong_size[1] ^= 0x02;
  std::vector<Case> cases{
      {"malformed JSON", "victim", "{\"aik_tpm\": \"", 400, false},
      {"duplicate keys", "victim", dup, 400, false},
      {"bad base64", "victim", with("aik_tpm", "%%%not-base64%%%"), 400, true},
      // For the registered id, a different (even broken) AK is an identity change: 403, as upstream.
      {"truncated TPM2B_PUBLIC, registered id", "victim", with("aik_tpm", kl::base64_encode(truncated)), 403, true},
      {"truncated TPM2B_PUBLIC", "newcomer", with("aik_tpm", kl::base64_encode(truncated)), 400, true},
      {"oversized TPM2B_PUBLIC", "newcomer", with("aik_tpm", kl::base64_encode(oversized)), 400, true},
      {"wrong TPM2B size field", "newcomer", with("ek_tpm", kl::base64_encode(wrong_size)), 400, true},
      {"garbage certificate", "newcomer", with("ekcert", "-----BEGIN CERTIFICATE-----\nabcd\n-----END CERTIFICATE-----"), 400, true},
      {"bad agent id", "a..b", good.dump(), 400, true},
      {"port out of range", "newcomer", with("port", 123456), 400, true},
      {"oversized body", "newcomer", with("ip", std::string(70000, 'x')), 413, true},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = post(c.id, c.body);
    CHECK(r.status == c.status);
    if (c.envelope) {
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      CHECK(j.is_object());
      CHECK(j.value("code", 0) == c.status);
    } else {
      CHECK(r.body.empty());
    }
  }
  CHECK(reg.dump_db() == before);
}

TEST_CASE("persistence across a restart, clean SIGTERM exit") {
  RunningRegistrar reg;
  SoftwareAgent agent;
  RegisterOptions o;
  o.agent_id = "persistent-agent";
  {
    auto client = reg.plain_client();
    REQUIRE(register_and_activate(client, agent, o).ok());
  }
  CHECK(reg.stop_and_status() == 0);
  reg.start();
  auto show = reg.admin_client().request("GET", "/v2.6/agents/persistent-agent");
  REQUIRE(show.status == 200);
  CHECK(parse(show.body)["results"]["aik_tpm"] == kl::base64_encode(agent.ak_tpm2b_public()));
}

TEST_CASE("an upstream database is used in place: GET equals upstream's response") {
  RunningRegistrar reg;
  reg.stop();
  std::filesystem::copy_file(std::string(KL_TESTDATA_DIR) + "/keylime-db/reg_data.sqlite", reg.db_file(),
                             std::filesystem::copy_options::overwrite_existing);
  for (const char* ext : {"-wal", "-shm"}) std::filesystem::remove(reg.db_file().string() + ext);
  reg.start();
  auto r = reg.admin_client().request("GET", "/v2.1/agents/d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  REQUIRE(r.status == 200);
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/keylime-db/registrar-get-agent-v2.1.json");
  auto expected = nlohmann::json::parse(in);
  CHECK(parse(r.body)["results"] == expected["results"]);
}

TEST_CASE("command line: --help, --version, bad configuration values") {
  auto help = run_command({regitest::registrar_binary().string(), "--help"});
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Catch::Contains("-c"));
  auto ver = run_command({regitest::registrar_binary().string(), "--version"});
  CHECK(ver.status == 0);
  CHECK_THAT(ver.output, Catch::Contains("keylime_registrar"));

  TempDir d;
  std::ofstream(d.path() / "bad.conf") << "[registrar]\ntpm_identity = whatever\n";
  auto bad = run_command({regitest::registrar_binary().string(), "-c", (d.path() / "bad.conf").string()},
                         {{"KEYLIME_DIR", d.path().string()}});
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Catch::Contains("tpm_identity"));
  auto badenv = run_command({regitest::registrar_binary().string(), "-c", (d.path() / "bad.conf").string()},
                            {{"KEYLIME_DIR", d.path().string()}, {"KEYLIME_REGISTRAR_TPM_IDENTITY", "default"},
                             {"KEYLIME_REGISTRAR_PORT", "http"}});
  CHECK(badenv.status != 0);
  CHECK_THAT(badenv.output, Catch::Contains("port"));
}
