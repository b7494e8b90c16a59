// EK-certificate surrogates against keylime_registrar as a process, over real HTTP: an swtpm-backed agent whose EK
// is bound by an SEV-SNP report signed with a synthetic AMD chain (as an SVSM-vTPM would present it) registers and
// activates; every negative case is a 400 naming the failed check and leaves the SQLite database unchanged; the
// public vectors of testdata/snp/MANIFEST.md give their expected verdicts; an Azure-style agent registers its
// AK-certificate key as an IAK without an IDevID.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <algorithm>
#include <memory>
#include <mutex>

#include <tss2/tss2_mu.h>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/software_quote.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/server.hpp"
#include "running_registrar.hpp"
#include "support/cert_issue.hpp"
#include "support/snp_chain.hpp"
#include "support/swtpm.hpp"

using namespace kl::testing;
using regitest::RunningRegistrar;
namespace fs = std::filesystem;
using kl::Bytes;

namespace {

nlohmann::json parse(const std::string& body) { return nlohmann::json::parse(body); }

Bytes vector_file(const std::string& rel) {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/snp/" + rel, std::ios::binary);
  if (!in) FAIL("missing test vector snp/" << rel);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Chip {
  Bytes id;
  snptest::TestLeaf vcek;
  kl::snp::TcbParts tcb;
};

Chip add_chip(const fs::path& store, std::uint8_t seed, snptest::LeafSpec spec = {}) {
  Chip c{snptest::chip_id_of(seed), {}, spec.tcb};
  spec.hw_id = c.id;
  c.vcek = snptest::make_leaf(snptest::test_chain(), spec);
  kl::snp::LeafQuery q{kl::snp::Product::milan, kl::snp::VekKind::vcek, c.id, spec.tcb};
  snptest::write_file(store / kl::snp::vcek_store_path(q), c.vcek.der);
  return c;
}

snptest::ReportSpec spec_for(const Chip& c) {
  snptest::ReportSpec s;
  s.chip_id = c.id;
  s.tcb = c.tcb;
  return s;
}

// POST the registration with `ekcert` = base64(report); expect 400 naming `code` (or the generic text when
// `code` is empty) and the database unchanged.
void expect_refused(RunningRegistrar& reg, const AgentIdentity& agent, const Bytes& ekcert, const std::string& code,
                    const std::string& what) {
  INFO(what);
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = "refused-agent";
  o.ekcert_surrogate = ekcert;
  const std::string before = reg.dump_db();
  auto r = client.request("POST", "/v2.6/agents/refused-agent", registration_body(agent, o).dump());
  INFO(r.body);
  CHECK(r.status == 400);
  auto j = parse(r.body);
  CHECK(j["code"] == 400);
  if (code.empty()) {
    CHECK(j["status"] == "Could not register agent with invalid data");
    CHECK(j["results"] == nlohmann::json::object());
  } else {
    CHECK(j["results"]["error"] == code);
    CHECK(j["status"].get<std::string>().find(code) != std::string::npos);
  }
  CHECK(reg.dump_db() == before);
}

}  // namespace

TEST_CASE("SVSM-vTPM surrogate over HTTP: swtpm EK bound by a synthetic SNP report registers and activates, "
          "negatives are named 400s with the database unchanged",
          "[snp]") {
  kl::testing::TempDir dir;
  const fs::path store = dir.path() / "snp_cert_store";
  snptest::write_store(snptest::test_chain(), store);
  const Chip good = add_chip(store, 1);
  const Chip other = add_chip(store, 2);
  snptest::LeafSpec expired;
  expired.not_before_days = -400;
  expired.not_after_days = -1;
  const Chip old_chip = add_chip(store, 3, expired);
  snptest::LeafSpec revoked;
  revoked.serial = 77;
  const Chip revoked_chip = add_chip(store, 4, revoked);
  snptest::LeafSpec low;
  low.tcb = {3, 0, 7, 115};
  const Chip low_chip = add_chip(store, 5, low);
  const auto& chain = snptest::test_chain();
  snptest::write_file(store / "Milan" / "crl.der", snptest::make_crl(chain.ask.get(), chain.ask_key.get(), {77}));
  const fs::path policy = dir.path() / "policy.json";
  std::ofstream(policy) << R"({"minimum_tcb": {"bl": 3, "snp": 8, "ucode": 115}, "allow_debug": false})";

  regitest::RegistrarOptions ro;
  ro.extra_config = "snp_cert_store = " + store.string() + "\nsnp_additional_ark_sha256 = " + chain.ark_sha256 +
                    "\nsnp_policy = " + policy.string() + "\n";
  RunningRegistrar reg(ro);

  std::unique_ptr<Swtpm> tpm;
  std::unique_ptr<AgentIdentity> agent;
  if (Swtpm::available()) {
    tpm = std::make_unique<Swtpm>();
    agent = std::make_unique<TpmAgent>(tpm->tcti());
  } else {
    WARN("swtpm not installed: the surrogate binds a software EK instead");
    agent = std::make_unique<SoftwareAgent>(SoftwareAgent::EkAlg::rsa2048);
  }
  const Bytes ek = agent->ek_tpm2b_public();
  const Bytes report = snptest::surrogate_report(good.vcek.key.get(), ek, spec_for(good));

  // Positive: the agent sends the report in place of its EK certificate.
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = "svsm-vtpm-agent";
  o.ekcert_surrogate = report;
  RegistrationOutcome out = register_and_activate(client, *agent, o);
  INFO(reg.log());
  INFO(out.error);
  REQUIRE(out.register_status == 200);
  REQUIRE(out.activate_status == 200);
  auto show = reg.admin_client().request("GET", "/v2.6/agents/svsm-vtpm-agent");
  REQUIRE(show.status == 200);
  auto res = parse(show.body)["results"];
  CHECK(res["ekcert"] == kl::base64_encode(report));
  CHECK(res["ek_tpm"] == kl::base64_encode(ek));
  CHECK(res["regcount"] == 1);
  CHECK(res["provider_keys"]["snp"]["chip_id"] == kl::hex_encode(good.id));
  CHECK(res["provider_keys"]["snp"]["vmpl"] == 0);
  CHECK(res["provider_keys"]["snp"]["reported_tcb"]["snp"] == 8);
  CHECK(reg.log().find("EK-certificate surrogate verified (SEV-SNP report)") != std::string::npos);

  // Negatives, each through the real binary.
  auto s = spec_for(good);
  s.vmpl = 1;
  expect_refused(reg, *agent, snptest::surrogate_report(good.vcek.key.get(), ek, s), "ERR_VMPL", "VMPL 1");
  SoftwareAgent stranger(SoftwareAgent::EkAlg::rsa2048);
  expect_refused(reg, *agent,
                 snptest::surrogate_report(good.vcek.key.get(), stranger.ek_tpm2b_public(), spec_for(good)),
                 "ERR_EK_BINDING", "report binds another EK");
  expect_refused(reg, *agent, snptest::surrogate_report(other.vcek.key.get(), ek, spec_for(good)),
                 "ERR_REPORT_SIGNATURE", "signed by another chip");
  expect_refused(reg, *agent, snptest::surrogate_report(old_chip.vcek.key.get(), ek, spec_for(old_chip)),
                 "ERR_CERT_EXPIRED", "expired VCEK");
  expect_refused(reg, *agent, snptest::surrogate_report(revoked_chip.vcek.key.get(), ek, spec_for(revoked_chip)),
                 "ERR_REVOKED", "VCEK revoked by the ASK's CRL");
  expect_refused(reg, *agent, snptest::surrogate_report(low_chip.vcek.key.get(), ek, spec_for(low_chip)), "ERR_TCB",
                 "TCB below the policy minimum");
  auto d = spec_for(good);
  d.policy |= 1u << 19;
  expect_refused(reg, *agent, snptest::surrogate_report(good.vcek.key.get(), ek, d), "ERR_POLICY_DEBUG", "debug");

  // Malformed reports.
  expect_refused(reg, *agent, Bytes(report.begin(), report.begin() + 700), "", "short");
  Bytes longer = report;
  longer.insert(longer.end(), 16, 0x5A);
  expect_refused(reg, *agent, longer, "", "long");
  Bytes v9 = report;
  v9[0] = 9;
  expect_refused(reg, *agent, v9, "", "wrong version");
  expect_refused(reg, *agent, Bytes(1184, 0xC3), "", "garbage");
  Bytes mbz = report;
  mbz[0x330] = 1;
  expect_refused(reg, *agent, mbz, "ERR_REPORT_MALFORMED", "reserved bytes set");

  // Another EK under the registered id is still the identity rule (403), the record untouched.
  const std::string before = reg.dump_db();
  RegisterOptions again = o;
  again.ekcert_surrogate = snptest::surrogate_report(good.vcek.key.get(), stranger.ek_tpm2b_public(), spec_for(good));
  auto r = client.request("POST", "/v2.6/agents/svsm-vtpm-agent", registration_body(stranger, again).dump());
  CHECK(r.status == 403);
  CHECK(reg.dump_db() == before);
}

TEST_CASE("MANIFEST vectors over HTTP with the AMD roots pinned as shipped", "[snp]") {
  kl::testing::TempDir dir;
  const fs::path store = dir.path() / "amd";
  snptest::write_file(store / "Milan" / "ark.pem", vector_file("amd-roots/milan_vcek_ark.pem"));
  snptest::write_file(store / "Milan" / "ask.pem", vector_file("amd-roots/milan_vcek_ask.pem"));
  snptest::write_file(store / "Milan" / "asvk.pem", vector_file("amd-roots/milan_vlek_ask.pem"));
  auto put_vcek = [&](kl::ByteView report, const Bytes& cert) {
    auto rep = kl::snp::parse_report(report.first(kl::snp::kReportSize));
    kl::snp::LeafQuery q{kl::snp::Product::milan, kl::snp::VekKind::vcek, Bytes(rep.chip_id.begin(), rep.chip_id.end()),
                         kl::snp::decode_tcb(rep.reported_tcb, kl::snp::Product::milan)};
    auto certs = kl::snp::load_certificates(cert);
    REQUIRE(!certs.empty());
    snptest::write_file(store / kl::snp::vcek_store_path(q), snptest::to_der(certs.front().get()));
  };
  const Bytes virtee = vector_file("milan-virtee/report_milan.bin");
  const Bytes gosev = vector_file("milan-gosevguest/attestation.bin");
  const Bytes constellation = vector_file("azure-constellation/hcl_report_reconstructed.bin");
  const Bytes kinvolk = vector_file("azure-kinvolk/hcl-report-snp.bin");
  put_vcek(virtee, vector_file("milan-virtee/vcek_milan.der"));
  put_vcek(gosev, vector_file("milan-gosevguest/vcek.der"));
  put_vcek(kl::ByteView(constellation).subspan(32), vector_file("azure-constellation/vcek.der"));
  put_vcek(kl::ByteView(kinvolk).subspan(32), vector_file("azure-kinvolk/certs_vcek_ask_ark_unrelated_chip.pem"));
  snptest::write_file(store / "vlek" / "Milan" / "aws.pem", vector_file("aws-vlek-milan-v3/vlek.pem"));

  regitest::RegistrarOptions ro;
  ro.extra_config = "snp_cert_store = " + store.string() + "\n";
  RunningRegistrar reg(ro);
  SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);

  expect_refused(reg, agent, virtee, "ERR_EK_BINDING", "virtee: genuine, binds no EK");
  expect_refused(reg, agent, vector_file("milan-virtee/report_milan_tampered_byte21.bin"), "ERR_REPORT_SIGNATURE",
                 "virtee tampered");
  expect_refused(reg, agent, gosev, "ERR_EK_BINDING", "go-sev-guest: debug policy");
  {
    RegisterOptions o;
    o.agent_id = "x";
    o.ekcert_surrogate = gosev;
    auto j = parse(reg.plain_client().request("POST", "/v2.6/agents/x", registration_body(agent, o).dump()).body);
    CHECK(j["results"]["failed_checks"] == nlohmann::json::array({"ERR_EK_BINDING", "ERR_POLICY_DEBUG"}));
  }
  expect_refused(reg, agent, vector_file("aws-vlek-milan-v3/report.bin"), "ERR_CERT_EXPIRED", "AWS VLEK (expired)");
  expect_refused(reg, agent, constellation, "ERR_HCL_NO_EK", "Azure Constellation: no HCLEkPub");
  expect_refused(reg, agent, kinvolk, "ERR_VEK_MISMATCH", "Azure kinvolk: VCEK of another chip");
  CHECK(reg.dump_db().empty());
}

namespace {

void fill2b(TPM2B_DATA& out, kl::ByteView b) {
  out.size = static_cast<UINT16>(b.size());
  std::copy(b.begin(), b.end(), out.buffer);
}
void fill2b(TPM2B_NAME& out, kl::ByteView b) {
  out.size = static_cast<UINT16>(b.size());
  std::copy(b.begin(), b.end(), out.name);
}

// TPM2_Certify(AK) signed by `iak`, qualifying data SHA-256(agent id): the iak_attest / iak_sign pair.
std::pair<Bytes, Bytes> certify(EVP_PKEY* iak, kl::ByteView ak_tpm2b, const std::string& agent_id) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_CERTIFY;
  fill2b(a.qualifiedSigner, Bytes(34, 0x11));
  fill2b(a.extraData, kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(agent_id)));
  a.clockInfo.clock = 4242;
  a.clockInfo.safe = 1;
  fill2b(a.attested.certify.name, kl::tpm::name_of(kl::tpm::parse_tpm2b_public(ak_tpm2b)));
  fill2b(a.attested.certify.qualifiedName, Bytes(34, 0x22));
  Bytes attest(sizeof(TPMS_ATTEST));
  size_t off = 0;
  REQUIRE(Tss2_MU_TPMS_ATTEST_Marshal(&a, attest.data(), attest.size(), &off) == TSS2_RC_SUCCESS);
  attest.resize(off);
  return {attest, sign_as_tpm(iak, attest)};
}

}  // namespace

TEST_CASE("Azure-style AK certificate as IAK (no EK certificate, no IDevID) registers and activates", "[snp][azure]") {
  kl::testing::TempDir dir;
  const fs::path trust = dir.path() / "tpm_cert_store";
  fs::create_directories(trust);
  // A stand-in for "Azure Virtual TPM Root Certificate Authority 2023" (the real root cannot issue test leaves);
  // the real root sits beside it, as an operator would install it.
  TestCa root = make_test_ca("Azure Virtual TPM Root Certificate Authority 2023 (test)");
  std::ofstream(trust / "azure-test-root.pem") << cert_to_pem(root.cert.get());
  fs::copy_file(std::string(KL_TESTDATA_DIR) + "/snp/azure-vtpm-ca/azure-virtual-tpm-root-ca-2023.pem",
                trust / "azure-virtual-tpm-root-ca-2023.pem");

  SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);   // EK without a certificate, AK made by the agent
  kl::ossl::Pkey azure_ak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  REQUIRE(azure_ak);
  const Bytes iak_tpm = kl::tpm::marshal_tpm2b_public(kl::tpm::tpmt_from_key(azure_ak.get(), false));
  auto ak_cert = issue_certificate(azure_ak.get(), "vm-0001 AK", root.key.get(), root.cert.get(), LeafKind::ek);
  const std::string id = "azure-cvm-agent";
  auto [attest, sig] = certify(azure_ak.get(), agent.ak_tpm2b_public(), id);

  regitest::RegistrarOptions ro;
  ro.tpm_cert_store = trust;
  RunningRegistrar reg(ro);
  auto client = reg.plain_client();
  RegisterOptions o;
  o.agent_id = id;
  nlohmann::json body = registration_body(agent, o);
  body["iak_tpm"] = kl::base64_encode(iak_tpm);
  body["iak_cert"] = kl::base64_encode(cert_to_der(ak_cert.get()));
  body["iak_attest"] = kl::base64_encode(attest);
  body["iak_sign"] = kl::base64_encode(sig);
  REQUIRE(!body.contains("ekcert"));

  auto r = client.request("POST", "/v2.6/agents/" + id, body.dump());
  INFO(r.body);
  INFO(reg.log());
  REQUIRE(r.status == 200);
  CHECK(reg.log().find("must contain the same public key found in ekcert") == std::string::npos);
  auto blob = kl::base64_decode(parse(r.body)["results"]["blob"].get<std::string>());
  REQUIRE(blob);
  const Bytes credential = agent.activate_credential(*blob);
  auto act = client.request("PUT", "/v2.6/agents/" + id, nlohmann::json{{"auth_tag", auth_tag(credential, id)}}.dump());
  CHECK(act.status == 200);

  // An AK certificate from an unknown CA is refused, nothing stored.
  TestCa rogue = make_test_ca("Rogue vTPM CA");
  auto rogue_cert = issue_certificate(azure_ak.get(), "vm-0001 AK", rogue.key.get(), rogue.cert.get(), LeafKind::ek);
  auto [attest2, sig2] = certify(azure_ak.get(), agent.ak_tpm2b_public(), "azure-cvm-agent-2");
  body["iak_cert"] = kl::base64_encode(cert_to_der(rogue_cert.get()));
  body["iak_attest"] = kl::base64_encode(attest2);
  body["iak_sign"] = kl::base64_encode(sig2);
  const std::string before = reg.dump_db();
  CHECK(client.request("POST", "/v2.6/agents/azure-cvm-agent-2", body.dump()).status == 400);
  CHECK(reg.dump_db() == before);
}

TEST_CASE("kl_test_agent register --snp-vcek-key: the swtpm agent acts as an SVSM-vTPM", "[snp][cli]") {
  const fs::path exe = fs::path(KL_BINARY_DIR) / "tests" / "kl_test_agent";
  if (!fs::exists(exe)) {
    WARN("kl_test_agent not built (cmake --build ... --target kl_test_agent): skipped");
    return;
  }
  kl::testing::TempDir dir;
  const fs::path store = dir.path() / "snp_cert_store";
  snptest::write_store(snptest::test_chain(), store);
  const Chip chip = add_chip(store, 40);
  const fs::path key = dir.path() / "vcek-key.pem";
  std::ofstream(key) << snptest::private_key_pem(chip.vcek.key.get());

  regitest::RegistrarOptions ro;
  ro.extra_config = "snp_cert_store = " + store.string() + "\nsnp_additional_ark_sha256 = " +
                    snptest::test_chain().ark_sha256 + "\n";
  RunningRegistrar reg(ro);
  const std::string registrar = "127.0.0.1:" + std::to_string(reg.port());
  std::unique_ptr<Swtpm> tpm;
  std::vector<std::string> identity = {"--software"};
  if (Swtpm::available()) {
    tpm = std::make_unique<Swtpm>();
    identity = {"--tcti", tpm->tcti()};
  }
  auto run = [&](const std::string& uuid, const std::string& vmpl) {
    std::vector<std::string> argv = {exe.string(), "register", "--registrar", registrar, "--uuid", uuid,
                                     "--snp-vcek-key", key.string(), "--snp-chip-id", kl::hex_encode(chip.id),
                                     "--snp-vmpl", vmpl};
    argv.insert(argv.end(), identity.begin(), identity.end());
    return run_command(argv);
  };
  const auto ok = run("cli-svsm", "0");
  INFO(ok.output);
  INFO(reg.log());
  CHECK(ok.status == 0);
  CHECK(nlohmann::json::parse(ok.output)["activate_status"] == 200);

  const std::string before = reg.dump_db();
  const auto bad = run("cli-svsm-vmpl1", "1");
  INFO(bad.output);
  CHECK(bad.status == 1);
  const auto j = nlohmann::json::parse(bad.output);
  CHECK(j["register_status"] == 400);
  CHECK(j["register_reply"]["results"]["error"] == "ERR_VMPL");
  CHECK(reg.dump_db() == before);
}

TEST_CASE("snp_kds = on: VCEK, ASK and CRL fetched from a KDS mirror on loopback, then served from the cache",
          "[snp][kds]") {
  kl::testing::TempDir dir;
  const auto& chain = snptest::test_chain();
  const fs::path store = dir.path() / "store";   // only the pinned ARK
  snptest::write_file(store / "Milan" / "ark.pem", kl::as_bytes(snptest::to_pem(chain.ark.get())));
  snptest::LeafSpec ls;
  ls.hw_id = snptest::chip_id_of(60);
  const snptest::TestLeaf vcek = snptest::make_leaf(chain, ls);
  const std::string crl = kl::as_string(snptest::make_ark_crl(chain, {}));

  std::mutex mu;
  std::vector<std::string> requests;
  kl::http::ServerOptions so;
  so.listeners.push_back(kl::http::ListenerConfig{"127.0.0.1", 0, std::nullopt});
  kl::http::Server kds(so, [&](const kl::http::Request& r) {
    {
      std::lock_guard lock(mu);
      requests.push_back(r.path + "?" + r.query);
    }
    kl::http::Response resp;
    resp.status = 200;
    resp.content_type = "application/octet-stream";
    if (r.path == "/vcek/v1/Milan/" + kl::hex_encode(ls.hw_id) && r.query.find("snpSPL=08") != std::string::npos)
      resp.body = kl::as_string(vcek.der);
    else if (r.path == "/vcek/v1/Milan/cert_chain")
      resp.body = snptest::to_pem(chain.ask.get()) + snptest::to_pem(chain.ark.get());
    else if (r.path == "/vcek/v1/Milan/crl")
      resp.body = crl;
    else
      resp.status = 404;
    return resp;
  });
  kds.start();

  regitest::RegistrarOptions ro;
  ro.extra_config = "snp_cert_store = " + store.string() + "\nsnp_additional_ark_sha256 = " + chain.ark_sha256 +
                    "\nsnp_kds = on\nsnp_kds_url = http://127.0.0.1:" + std::to_string(kds.bound_ports().at(0)) +
                    "\nsnp_kds_cache = " + (dir.path() / "kds-cache").string() + "\n";
  RunningRegistrar reg(ro);
  auto client = reg.plain_client();
  snptest::ReportSpec rs;
  rs.chip_id = ls.hw_id;
  for (const char* id : {"kds-agent-1", "kds-agent-2"}) {
    SoftwareAgent agent(SoftwareAgent::EkAlg::rsa2048);
    RegisterOptions o;
    o.agent_id = id;
    o.ekcert_surrogate = snptest::surrogate_report(vcek.key.get(), agent.ek_tpm2b_public(), rs);
    auto out = register_and_activate(client, agent, o);
    INFO(reg.log());
    INFO(out.error);
    CHECK(out.ok());
  }
  kds.stop();
  std::lock_guard lock(mu);
  INFO(nlohmann::json(requests).dump());
  // One download each for the VCEK and the ASK chain (then the cache); the CRL is fetched (and cached) too.
  CHECK(std::count_if(requests.begin(), requests.end(),
                      [](const std::string& u) { return u.find("/cert_chain") != std::string::npos; }) == 1);
  CHECK(std::count_if(requests.begin(), requests.end(), [&](const std::string& u) {
          return u.find(kl::hex_encode(ls.hw_id)) != std::string::npos;
        }) == 1);
  CHECK(fs::exists(dir.path() / "kds-cache" /
                   kl::snp::vcek_store_path(kl::snp::LeafQuery{kl::snp::Product::milan, kl::snp::VekKind::vcek,
                                                               ls.hw_id, ls.tcb})));
}
