// EK-certificate surrogates through the registrar's registration path, in-process (real SQLite file, software
// agents): every vector of testdata/snp/MANIFEST.md with its expected verdict, and SVSM-vTPM style reports made with
// the synthetic AMD chain (tests/support/snp_chain.hpp) that bind the agent's EK, up to activation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include <sqlite3.h>
#include <tss2/tss2_tpm2_types.h>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/azure/hcl_report.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/config/config.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_service.hpp"
#include "registrar/registration.hpp"
#include "support/cert_issue.hpp"
#include "support/snp_chain.hpp"
#include "support/temp_dir.hpp"

using namespace kl;
using kl::registrar::RegistrarService;
using kl::registrar::SurrogateSettings;
using kl::registrar::SurrogateVerifier;
namespace fs = std::filesystem;

namespace {

Bytes vector_file(const std::string& rel) {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/snp/" + rel, std::ios::binary);
  if (!in) FAIL("missing test vector snp/" << rel);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes first_cert_der(const Bytes& pem_or_der) {
  auto certs = snp::load_certificates(pem_or_der);
  REQUIRE(!certs.empty());
  return snptest::to_der(certs.front().get());
}

// Puts `vcek` where the store lookup for `report` looks (vcek/<Product>/<hwid>/<tcb-key>.der).
void store_vcek(const fs::path& store, ByteView report, const Bytes& vcek, snp::Product product = snp::Product::milan) {
  snp::SnpReport r = snp::parse_report(report.first(snp::kReportSize));
  snp::LeafQuery q{product, snp::VekKind::vcek, Bytes(r.chip_id.begin(), r.chip_id.end()),
                   snp::decode_tcb(r.reported_tcb, product)};
  snptest::write_file(store / snp::vcek_store_path(q), vcek);
}

void store_amd_milan(const fs::path& store) {
  snptest::write_file(store / "Milan" / "ark.pem", vector_file("amd-roots/milan_vcek_ark.pem"));
  snptest::write_file(store / "Milan" / "ask.pem", vector_file("amd-roots/milan_vcek_ask.pem"));
  snptest::write_file(store / "Milan" / "asvk.pem", vector_file("amd-roots/milan_vlek_ask.pem"));
}

enum class Roots { test, amd };

// A registrar service on a real SQLite file, with surrogate checks configured as `prepare` says. The ARKs are read
// when the service starts: `roots` says which are in the store by then (leaves and CRLs may be added later).
struct SnpRegistrar {
  testing::TempDir dir;
  fs::path store = dir.path() / "snp_cert_store";
  std::unique_ptr<RegistrarService> service;

  explicit SnpRegistrar(const std::function<void(SurrogateSettings&)>& prepare = {},
                        std::optional<std::chrono::system_clock::time_point> clock = std::nullopt,
                        Roots roots = Roots::test) {
    fs::create_directories(store);
    if (roots == Roots::test) snptest::write_store(snptest::test_chain(), store);
    else store_amd_milan(store);
    registrar::RegistrarSettings s;
    s.ek_cert_chain_check = registrar::EkChainCheck::off;
    s.surrogates.cert_store = store;
    s.surrogates.extra_ark_pins = {snptest::test_chain().ark_sha256};
    if (prepare) prepare(s.surrogates);
    auto log = spdlog::get("registrar-snp-test");
    if (!log) log = kl::log::make_logger("registrar-snp-test", {{"KEYLIME_LOG_LEVEL", "ERROR"}});
    auto verifier = std::make_unique<SurrogateVerifier>(s.surrogates, nullptr, clock);
    service = std::make_unique<RegistrarService>(s, storage::open_registrar_store("sqlite", dir.path()),
                                                 ek::TrustStore::from_certificates({}), log, std::move(verifier));
  }

  http::Response call(const std::string& method, const std::string& target, const std::string& body = "",
                      bool admin = false) {
    http::Request r;
    r.method = method;
    r.target = target;
    r.path = target;
    r.body = body;
    r.tls = admin;
    r.headers["content-type"] = "application/json";
    if (admin) r.peer = http::PeerCertificate{true, "admin", ""};
    r.remote_address = "127.0.0.1";
    return service->handle(r);
  }
  http::Response post(const std::string& id, const nlohmann::json& body) {
    return call("POST", "/v2.6/agents/" + id, body.dump());
  }

  // Every row of registrarmain, and the database file's bytes: "nothing stored" means both unchanged.
  std::string snapshot() const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2((dir.path() / "reg_data.sqlite").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    std::string out;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT * FROM registrarmain ORDER BY agent_id", -1, &st, nullptr);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        out += std::string(sqlite3_column_name(st, i)) + "=" + (t ? reinterpret_cast<const char*>(t) : "NULL") + "|";
      }
      out += "\n";
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    std::ifstream in(dir.path() / "reg_data.sqlite", std::ios::binary);
    return out + std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
};

nlohmann::json json_of(const http::Response& r) { return nlohmann::json::parse(r.body); }

nlohmann::json body_with_ekcert(const testing::AgentIdentity& agent, ByteView ekcert, const std::string& id) {
  testing::RegisterOptions o;
  o.agent_id = id;
  o.ekcert_surrogate = Bytes(ekcert.begin(), ekcert.end());
  return testing::registration_body(agent, o);
}

// A 400 naming `code`, the database untouched.
void expect_refused(SnpRegistrar& reg, const nlohmann::json& body, const std::string& code,
                    const std::string& id = "snp-agent") {
  const std::string before = reg.snapshot();
  auto r = reg.post(id, body);
  INFO(r.body);
  REQUIRE(r.status == 400);
  auto j = json_of(r);
  CHECK(j["code"] == 400);
  CHECK(j["results"]["error"] == code);
  CHECK(j["status"].get<std::string>().rfind("Could not register agent with invalid data: " + code + ": ", 0) == 0);
  CHECK(j["results"]["failed_checks"][0] == code);
  CHECK(reg.snapshot() == before);
}

// The synthetic "AMD" and one Milan chip with its VCEK in the store.
struct SyntheticChip {
  Bytes chip;
  snptest::TestLeaf vcek;
  SyntheticChip(const fs::path& store, std::uint8_t seed, snptest::LeafSpec spec = {}) : chip(snptest::chip_id_of(seed)) {
    spec.hw_id = chip;
    vcek = snptest::make_leaf(snptest::test_chain(), spec);
    snp::LeafQuery q{snp::Product::milan, snp::VekKind::vcek, chip, spec.tcb};
    snptest::write_file(store / snp::vcek_store_path(q), vcek.der);
  }
  snptest::ReportSpec spec() const {
    snptest::ReportSpec s;
    s.chip_id = chip;
    return s;
  }
  Bytes surrogate_for(const testing::AgentIdentity& agent, snptest::ReportSpec s) const {
    return snptest::surrogate_report(vcek.key.get(), agent.ek_tpm2b_public(), std::move(s));
  }
  Bytes surrogate_for(const testing::AgentIdentity& agent) const { return surrogate_for(agent, spec()); }
};

// TPM2B_PUBLIC of an RSA signing key with modulus n (what aik_tpm would hold for Azure's AK).
Bytes rsa_ak_tpm2b(const Bytes& n) {
  TPMT_PUBLIC t{};
  t.type = TPM2_ALG_RSA;
  t.nameAlg = TPM2_ALG_SHA256;
  t.objectAttributes = 0x00050072;
  t.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
  t.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
  t.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
  t.parameters.rsaDetail.keyBits = static_cast<TPMI_RSA_KEY_BITS>(n.size() * 8);
  t.parameters.rsaDetail.exponent = 0;
  t.unique.rsa.size = static_cast<UINT16>(n.size());
  std::copy(n.begin(), n.end(), t.unique.rsa.buffer);
  return tpm::marshal_tpm2b_public(t);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Synthetic SVSM-vTPM surrogates (the positive path needs an EK the report binds: no public sample has one)

TEST_CASE("SVSM-vTPM surrogate bound to the agent's EK: register, activate, show keeps the verified fields",
          "[snp][registrar]") {
  for (auto alg : {testing::SoftwareAgent::EkAlg::rsa2048, testing::SoftwareAgent::EkAlg::ecc_p256}) {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 1);
    testing::SoftwareAgent agent(alg);
    const Bytes report = chip.surrogate_for(agent);
    const std::string id = "svsm-agent";

    auto r = reg.post(id, body_with_ekcert(agent, report, id));
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto blob = base64_decode(json_of(r)["results"]["blob"].get<std::string>());
    REQUIRE(blob);
    Bytes credential = agent.activate_credential(*blob);
    auto act = reg.call("PUT", "/v2.6/agents/" + id, nlohmann::json{{"auth_tag", testing::auth_tag(credential, id)}}.dump());
    REQUIRE(act.status == 200);

    auto show = reg.call("GET", "/v2.6/agents/" + id, "", /*admin=*/true);
    REQUIRE(show.status == 200);
    auto res = json_of(show)["results"];
    CHECK(res["ekcert"] == base64_encode(report));   // as sent, as the PoC's registrar keeps it
    CHECK(res["ek_tpm"] == base64_encode(agent.ek_tpm2b_public()));
    REQUIRE(res.contains("provider_keys"));
    const auto& snp = res["provider_keys"]["snp"];
    CHECK(res["provider_keys"]["ekcert"].is_null());
    CHECK(snp["type"] == "snp");
    CHECK(snp["product"] == "Milan");
    CHECK(snp["vmpl"] == 0);
    CHECK(snp["vek_kind"] == "VCEK");
    CHECK(snp["chip_id"] == hex_encode(chip.chip));
    CHECK(snp["measurement"] == hex_encode(snp::parse_report(report).measurement));
    CHECK(snp["reported_tcb"] == nlohmann::json{{"bl", 3}, {"tee", 0}, {"snp", 8}, {"ucode", 115}});
    CHECK(snp["vek_sha256"] == snp::sha256_fingerprint(chip.vcek.cert.get()));
    CHECK(snp["report"] == base64_encode(report));

    // Re-registration with the same report is the same identity (regcount 2); another report is a new one (403).
    CHECK(reg.post(id, body_with_ekcert(agent, report, id)).status == 200);
    auto other = chip.surrogate_for(agent, [&] {
      auto s = chip.spec();
      s.measurement = Bytes(48, 0x42);
      return s;
    }());
    const std::string before = reg.snapshot();
    CHECK(reg.post(id, body_with_ekcert(agent, other, id)).status == 403);
    CHECK(reg.snapshot() == before);
  }
}

TEST_CASE("SVSM-vTPM surrogate negatives: each named in a 400, nothing stored", "[snp][registrar]") {
  // ECC keys: cheap to make in every section (the binding is the same SHA-512 over ek_tpm whatever the key type).
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::ecc_p256);

  SECTION("VMPL 1") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 2);
    auto s = chip.spec();
    s.vmpl = 1;
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent, s), "snp-agent"), "ERR_VMPL");
  }
  SECTION("report binds another EK (wrong EK digest)") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 3);
    testing::SoftwareAgent other(testing::SoftwareAgent::EkAlg::ecc_p256);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(other), "snp-agent"), "ERR_EK_BINDING");
  }
  SECTION("the EK digest is over ek_tpm exactly as sent: bare TPMT_PUBLIC refused unless configured") {
    testing::SoftwareAgent a(testing::SoftwareAgent::EkAlg::rsa2048);
    auto spec_for = [&](const SyntheticChip& chip) {
      auto s = chip.spec();
      const Bytes ek = a.ek_tpm2b_public();
      s.report_data = crypto::digest(crypto::HashAlg::sha512, ByteView(ek).subspan(2));
      Bytes raw = snptest::build_report(s);
      snptest::sign_report(raw, chip.vcek.key.get());
      return raw;
    };
    {
      SnpRegistrar reg;
      SyntheticChip chip(reg.store, 4);
      expect_refused(reg, body_with_ekcert(a, spec_for(chip), "snp-agent"), "ERR_EK_BINDING");
    }
    SnpRegistrar lenient([](SurrogateSettings& s) { s.allow_bare_tpmt = true; });
    SyntheticChip chip(lenient.store, 4);
    CHECK(lenient.post("snp-agent", body_with_ekcert(a, spec_for(chip), "snp-agent")).status == 200);
  }
  SECTION("report signed by another chip's VCEK") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 5), other(reg.store, 6);
    Bytes r = snptest::surrogate_report(other.vcek.key.get(), agent.ek_tpm2b_public(), chip.spec());
    expect_refused(reg, body_with_ekcert(agent, r, "snp-agent"), "ERR_REPORT_SIGNATURE");
  }
  SECTION("report signed by a VCEK of a rogue AMD (ARK not pinned)") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 7);
    snptest::LeafSpec ls;
    ls.hw_id = chip.chip;
    auto rogue = snptest::make_leaf(snptest::rogue_chain(), ls);
    snp::LeafQuery q{snp::Product::milan, snp::VekKind::vcek, chip.chip, ls.tcb};
    snptest::write_file(reg.store / snp::vcek_store_path(q), rogue.der);
    Bytes r = snptest::surrogate_report(rogue.key.get(), agent.ek_tpm2b_public(), chip.spec());
    expect_refused(reg, body_with_ekcert(agent, r, "snp-agent"), "ERR_CHAIN_INVALID");
  }
  SECTION("expired VCEK") {
    SnpRegistrar reg;
    snptest::LeafSpec ls;
    ls.not_before_days = -400;
    ls.not_after_days = -1;
    SyntheticChip chip(reg.store, 8, ls);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_CERT_EXPIRED");
  }
  SECTION("VCEK revoked by the CRL in the store (signed by the ASK)") {
    SnpRegistrar reg;
    snptest::LeafSpec ls;
    ls.serial = 77;
    SyntheticChip chip(reg.store, 9, ls);
    const auto& c = snptest::test_chain();
    snptest::write_file(reg.store / "Milan" / "crl.der", snptest::make_crl(c.ask.get(), c.ask_key.get(), {77}));
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_REVOKED");
  }
  SECTION("ASK revoked by the ARK's CRL") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 10);
    snptest::write_file(reg.store / "Milan" / "crl.der", snptest::make_ark_crl(snptest::test_chain(), {2}));
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_REVOKED");
  }
  SECTION("a CRL that is present must be good, also when_present: stale or signed by another key -> refused") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 16);
    const auto& c = snptest::test_chain();
    snptest::write_file(reg.store / "Milan" / "crl.der", snptest::make_crl(c.ask.get(), c.ask_key.get(), {}, -1));
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_CRL_UNAVAILABLE");
    snptest::write_file(reg.store / "Milan" / "crl.der",
                        snptest::make_crl(c.ask.get(), snptest::rogue_chain().ask_key.get(), {}));
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_CRL_UNAVAILABLE");
    snptest::write_file(reg.store / "Milan" / "crl.der", snptest::make_crl(c.ask.get(), c.ask_key.get(), {}));
    CHECK(reg.post("snp-agent", body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent")).status == 200);
  }
  SECTION("no CRL: passes when_present, refused when required") {
    SnpRegistrar reg([](SurrogateSettings& s) { s.crl = registrar::CrlMode::required; });
    SyntheticChip chip(reg.store, 11);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_CRL_UNAVAILABLE");
    snptest::write_file(reg.store / "Milan" / "crl.der", snptest::make_crl(snptest::test_chain().ask.get(),
                                                                         snptest::test_chain().ask_key.get(), {99}));
    CHECK(reg.post("snp-agent", body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent")).status == 200);
  }
  SECTION("TCB below the policy minimum") {
    SnpRegistrar reg([](SurrogateSettings& s) {
      s.policy = snp::load_policy(nlohmann::json{{"minimum_tcb", {{"bl", 3}, {"snp", 9}, {"ucode", 115}}}});
    });
    SyntheticChip chip(reg.store, 12);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_TCB");
  }
  SECTION("debug policy and a measurement outside the allow-list are both listed") {
    SnpRegistrar reg([](SurrogateSettings& s) {
      s.policy = snp::load_policy(nlohmann::json{{"measurements", {std::string(96, 'a')}}});
    });
    SyntheticChip chip(reg.store, 13);
    auto s = chip.spec();
    s.policy = 0x30000 | (1u << 19);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent, s), "snp-agent"), "ERR_POLICY_DEBUG");
  }
  SECTION("surrogates switched off") {
    SnpRegistrar reg([](SurrogateSettings& s) { s.enabled = false; });
    SyntheticChip chip(reg.store, 14);
    expect_refused(reg, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_REPORT_MALFORMED");
  }
  SECTION("a VCEK from the certificate table appended to the report (extended report)") {
    SnpRegistrar reg;
    SyntheticChip chip(reg.store, 15);
    fs::remove_all(reg.store / "vcek");
    Bytes r = chip.surrogate_for(agent);
    expect_refused(reg, body_with_ekcert(agent, r, "snp-agent"), "ERR_VEK_UNAVAILABLE");
    snp::CertTable t;
    t.vcek = chip.vcek.der;
    Bytes table = snp::build_cert_table(t);
    r.insert(r.end(), table.begin(), table.end());
    CHECK(reg.post("snp-agent", body_with_ekcert(agent, r, "snp-agent")).status == 200);
  }
}

TEST_CASE("malformed surrogates: short, long, wrong version, reserved bytes, garbage -> 400 JSON, nothing stored",
          "[snp][registrar]") {
  SnpRegistrar reg;
  SyntheticChip chip(reg.store, 20);
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  // One good agent first, so "nothing stored" is checked against a non-empty table.
  REQUIRE(reg.post("good", body_with_ekcert(agent, chip.surrogate_for(agent), "good")).status == 200);
  const Bytes good = chip.surrogate_for(agent);

  auto generic = [&](const Bytes& ekcert, const std::string& why) {
    INFO(why);
    const std::string before = reg.snapshot();
    auto r = reg.post("bad", body_with_ekcert(agent, ekcert, "bad"));
    REQUIRE(r.status == 400);
    auto j = json_of(r);
    CHECK(j["status"] == "Could not register agent with invalid data");
    CHECK(j["results"] == nlohmann::json::object());
    CHECK(reg.snapshot() == before);
  };
  generic(Bytes(good.begin(), good.begin() + 1000), "short");
  Bytes longer = good;
  longer.insert(longer.end(), {1, 2, 3, 4, 5, 6, 7, 8});
  generic(longer, "long, tail not a certificate table");
  for (std::uint8_t v : {0, 1, 6, 0xFF}) {
    Bytes wrong = good;
    wrong[0] = v;
    generic(wrong, "version " + std::to_string(v));
  }
  generic(Bytes(1184, 0xA5), "garbage of report size");
  const std::string text = "not a certificate at all";
  generic(Bytes(text.begin(), text.end()), "garbage");

  // Looks like a report, but its structure is broken: named.
  Bytes reserved = good;
  reserved[0x04C] = 1;
  expect_refused(reg, body_with_ekcert(agent, reserved, "bad"), "ERR_REPORT_MALFORMED", "bad");
  Bytes algo = good;
  algo[0x034] = 2;
  expect_refused(reg, body_with_ekcert(agent, algo, "bad"), "ERR_REPORT_MALFORMED", "bad");
  Bytes tampered = good;
  tampered[0x90] ^= 1;
  expect_refused(reg, body_with_ekcert(agent, tampered, "bad"), "ERR_REPORT_SIGNATURE", "bad");

  // ek_tpm missing: the binding cannot hold.
  auto no_ek = body_with_ekcert(agent, good, "bad");
  no_ek.erase("ek_tpm");
  const std::string before = reg.snapshot();
  auto r = reg.post("bad", no_ek);
  CHECK(r.status == 400);
  CHECK(reg.snapshot() == before);
}

// ---------------------------------------------------------------------------------------------
// The public vectors (testdata/snp/MANIFEST.md), with the AMD roots pinned as shipped

TEST_CASE("MANIFEST vectors through registration: genuine Milan, tampered, debug, wrong VCEK", "[snp][registrar]") {
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  const Bytes virtee = vector_file("milan-virtee/report_milan.bin");
  const Bytes gosev = vector_file("milan-gosevguest/attestation.bin");

  SnpRegistrar reg([](SurrogateSettings& s) { s.extra_ark_pins.clear(); }, std::nullopt, Roots::amd);
  store_vcek(reg.store, virtee, vector_file("milan-virtee/vcek_milan.der"));
  store_vcek(reg.store, gosev, vector_file("milan-gosevguest/vcek.der"));

  // §2: genuine and verified, but REPORT_DATA binds no EK of ours.
  expect_refused(reg, body_with_ekcert(agent, virtee, "snp-agent"), "ERR_EK_BINDING");
  {
    auto r = json_of(reg.post("snp-agent", body_with_ekcert(agent, virtee, "snp-agent")));
    CHECK(r["results"]["failed_checks"] == nlohmann::json::array({"ERR_EK_BINDING"}));
  }
  expect_refused(reg, body_with_ekcert(agent, vector_file("milan-virtee/report_milan_tampered_byte21.bin"), "snp-agent"),
                 "ERR_REPORT_SIGNATURE");
  // §3: signature valid; the debug policy is reported beside the binding failure.
  expect_refused(reg, body_with_ekcert(agent, gosev, "snp-agent"), "ERR_EK_BINDING");
  auto g = json_of(reg.post("snp-agent", body_with_ekcert(agent, gosev, "snp-agent")));
  CHECK(g["results"]["failed_checks"] == nlohmann::json::array({"ERR_EK_BINDING", "ERR_POLICY_DEBUG"}));

  // The gosevguest VCEK where the virtee report's VCEK should be: TCB and hwID differ.
  SnpRegistrar wrong([](SurrogateSettings& s) { s.extra_ark_pins.clear(); }, std::nullopt, Roots::amd);
  store_vcek(wrong.store, virtee, vector_file("milan-gosevguest/vcek.der"));
  expect_refused(wrong, body_with_ekcert(agent, virtee, "snp-agent"), "ERR_VEK_MISMATCH");

  // No VCEK in the store, KDS off: unavailable offline.
  SnpRegistrar empty([](SurrogateSettings& s) { s.extra_ark_pins.clear(); }, std::nullopt, Roots::amd);
  expect_refused(empty, body_with_ekcert(agent, virtee, "snp-agent"), "ERR_VEK_UNAVAILABLE");

  // The test ARK is refused when only AMD's ARKs are pinned.
  SnpRegistrar pinned([](SurrogateSettings& s) { s.extra_ark_pins.clear(); });
  SyntheticChip chip(pinned.store, 30);
  expect_refused(pinned, body_with_ekcert(agent, chip.surrogate_for(agent), "snp-agent"), "ERR_VEK_UNAVAILABLE");
}

TEST_CASE("MANIFEST vector: AWS v3 report signed by an (expired) VLEK", "[snp][registrar]") {
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  const Bytes aws = vector_file("aws-vlek-milan-v3/report.bin");
  auto prepare = [](SurrogateSettings& s) { s.extra_ark_pins.clear(); };
  {
    SnpRegistrar reg(prepare, std::nullopt, Roots::amd);
    snptest::write_file(reg.store / "vlek" / "Milan" / "aws.pem", vector_file("aws-vlek-milan-v3/vlek.pem"));
    expect_refused(reg, body_with_ekcert(agent, aws, "snp-agent"), "ERR_CERT_EXPIRED");
  }
  // Checked while the VLEK was valid: signature verifies; binding fails and provisional firmware is listed.
  SnpRegistrar then(prepare, std::chrono::system_clock::from_time_t(1748736000), Roots::amd);   // 2025-06-01
  snptest::write_file(then.store / "vlek" / "Milan" / "aws.pem", vector_file("aws-vlek-milan-v3/vlek.pem"));
  expect_refused(then, body_with_ekcert(agent, aws, "snp-agent"), "ERR_EK_BINDING");
  auto j = json_of(then.post("snp-agent", body_with_ekcert(agent, aws, "snp-agent")));
  CHECK(j["results"]["failed_checks"] == nlohmann::json::array({"ERR_EK_BINDING", "ERR_TCB"}));
}

TEST_CASE("MANIFEST vectors: Azure HCL reports in ekcert or azure_hcl_report", "[snp][azure][registrar]") {
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  const Bytes constellation = vector_file("azure-constellation/hcl_report_reconstructed.bin");
  const Bytes kinvolk = vector_file("azure-kinvolk/hcl-report-snp.bin");
  auto prepare = [](SurrogateSettings& s) { s.extra_ark_pins.clear(); };

  SnpRegistrar reg(prepare, std::nullopt, Roots::amd);
  store_vcek(reg.store, ByteView(constellation).subspan(32), vector_file("azure-constellation/vcek.der"));
  store_vcek(reg.store, ByteView(kinvolk).subspan(32), first_cert_der(vector_file("azure-kinvolk/certs_vcek_ask_ark_unrelated_chip.pem")));

  // Constellation: genuine, but its claims have no HCLEkPub (2022-era) -> refused by default.
  expect_refused(reg, body_with_ekcert(agent, constellation, "azure-agent"), "ERR_HCL_NO_EK", "azure-agent");
  testing::RegisterOptions o;
  o.agent_id = "azure-agent";
  o.azure_hcl_report = constellation;
  expect_refused(reg, testing::registration_body(agent, o), "ERR_HCL_NO_EK", "azure-agent");
  // Kinvolk: HCL parse and binding pass, the VCEK is for another chip.
  expect_refused(reg, body_with_ekcert(agent, kinvolk, "azure-agent"), "ERR_VEK_MISMATCH", "azure-agent");

  // With azure_allow_missing_hcl_ek the Azure AK (HCLAkPub) must then be a key of the registration.
  SnpRegistrar lenient(
      [&](SurrogateSettings& s) {
        prepare(s);
        s.azure_allow_missing_ek = true;
      },
      std::nullopt, Roots::amd);
  store_vcek(lenient.store, ByteView(constellation).subspan(32), vector_file("azure-constellation/vcek.der"));
  expect_refused(lenient, testing::registration_body(agent, o), "ERR_AK_BINDING", "azure-agent");

  azure::HclClaims claims = azure::parse_claims(azure::parse_hcl_report(constellation));
  REQUIRE(claims.ak_pub);
  nlohmann::json body = testing::registration_body(agent, o);
  body["aik_tpm"] = base64_encode(rsa_ak_tpm2b(claims.ak_pub->n));   // the agent uses the Azure AK as its AK
  auto r = lenient.post("azure-agent", body);
  INFO(r.body);
  REQUIRE(r.status == 200);
  // Stored, not yet active: read the row through the store.
  auto rec = storage::open_registrar_store("sqlite", lenient.dir.path())->find("azure-agent");
  REQUIRE(rec);
  CHECK(rec->virtual_flag == true);
  auto keys = nlohmann::json::parse(*rec->provider_keys);
  CHECK(keys["azure_hcl"]["hcl_ak_bound"] == "aik_tpm");
  CHECK(keys["azure_hcl"]["hcl_ek_bound"] == false);
  CHECK(keys["azure_hcl"]["snp"]["measurement"] ==
        "5677f1de87289e7ad2c7e99c805d0468b1a9ccd83f0d245afa5242d405da4d5725852f8c6550564870e5f3206dfb1841");
  CHECK(keys["azure_hcl"]["runtime_claims"].contains("vm-configuration"));
  CHECK(!rec->ekcert);   // azure_hcl_report field, no EK certificate

  // Two different HCL reports at once are refused.
  body["ekcert"] = base64_encode(kinvolk);
  expect_refused(lenient, body, "ERR_HCL_MALFORMED", "azure-agent-2");

  // Malformed HCL: bad signature word, TDX, truncated claims.
  Bytes bad = constellation;
  bad[0] = 'X';
  o.azure_hcl_report = bad;
  expect_refused(lenient, testing::registration_body(agent, o), "ERR_HCL_MALFORMED", "azure-agent-3");
  Bytes tdx = constellation;
  tdx[1216 + 8] = 4;
  o.azure_hcl_report = tdx;
  expect_refused(lenient, testing::registration_body(agent, o), "ERR_HCL_MALFORMED", "azure-agent-3");
  o.azure_hcl_report = Bytes(constellation.begin(), constellation.begin() + 1300);
  expect_refused(lenient, testing::registration_body(agent, o), "ERR_HCL_MALFORMED", "azure-agent-3");
}

TEST_CASE("registrar config: snp_* keys", "[snp][registrar][config]") {
  auto load = [](const std::string& ini) {
    std::map<std::string, std::string> env{{"KEYLIME_DIR", "/srv/kl"}};
    return registrar::load_settings(config::Config::from_string("registrar", ini, env),
                                    config::Config::from_string("tenant", "[tenant]\n", env), env);
  };
  auto d = load("[registrar]\n");
  CHECK(d.surrogates.enabled);
  CHECK(d.surrogates.cert_store == "/srv/kl/snp_cert_store");
  CHECK(!d.surrogates.kds);
  CHECK(d.surrogates.crl == registrar::CrlMode::when_present);
  CHECK(d.surrogates.policy_setting == "default");
  CHECK(d.surrogates.policy.max_vmpl == 0);
  CHECK(!d.surrogates.policy.allow_debug);
  CHECK(d.warnings.empty());

  auto s = load("[registrar]\nsnp_surrogates = off\nsnp_cert_store = /etc/amd\nsnp_kds = on\nsnp_kds_url = http://127.0.0.1:9/\n"
                "snp_crl = required\nsnp_product = Genoa\nsnp_policy = " KL_SOURCE_DIR "/policies/snp/svsm-vtpm.json\n"
                "snp_additional_ark_sha256 = " + std::string(64, 'A') + "\n");
  CHECK(!s.surrogates.enabled);
  CHECK(s.surrogates.cert_store == "/etc/amd");
  CHECK(s.surrogates.kds);
  CHECK(s.surrogates.kds_url == "http://127.0.0.1:9");
  CHECK(s.surrogates.crl == registrar::CrlMode::required);
  CHECK(s.surrogates.product == snp::Product::genoa);
  CHECK(s.surrogates.policy.minimum_tcb.snp == 8);
  CHECK(s.surrogates.extra_ark_pins == std::vector<std::string>{std::string(64, 'a')});
  CHECK(s.warnings.empty());

  CHECK_THROWS_AS(load("[registrar]\nsnp_crl = maybe\n"), config::ConfigError);
  CHECK_THROWS_AS(load("[registrar]\nsnp_product = Zen9\n"), config::ConfigError);
  CHECK_THROWS_AS(load("[registrar]\nsnp_policy = /nonexistent/policy.json\n"), config::ConfigError);
  CHECK_THROWS_AS(load("[registrar]\nsnp_additional_ark_sha256 = abc\n"), config::ConfigError);
  CHECK_THROWS_AS(load("[registrar]\nsnp_kds_url = ftp://x\n"), config::ConfigError);
  // Every shipped policy file loads.
  for (const auto& f : fs::directory_iterator(fs::path(KL_SOURCE_DIR) / "policies" / "snp"))
    if (f.path().extension() == ".json") CHECK_NOTHROW(snp::load_policy_file(f.path()));
}

namespace {

std::string b64url(ByteView b) {
  std::string s = base64_encode(b);
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

nlohmann::json rsa_jwk(const std::string& kid, ByteView tpm2b) {
  auto area = tpm::parse_tpm2b_public(tpm2b);
  const auto& u = area.tpmt.unique.rsa;
  return {{"kid", kid}, {"kty", "RSA"}, {"key_ops", {"encrypt"}}, {"e", "AQAB"}, {"n", b64url(ByteView(u.buffer, u.size))}};
}

void put32(Bytes& b, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// An Azure HCL report as the paravisor builds it (layout of spec §7.2), around a report signed by the synthetic
// chip whose REPORT_DATA is SHA-256(claims) || 32 zero bytes.
Bytes synthetic_hcl(const SyntheticChip& chip, const nlohmann::json& claims_json, std::uint32_t vmpl = 0) {
  const std::string claims = claims_json.dump();
  snptest::ReportSpec s = chip.spec();
  s.vmpl = vmpl;
  s.report_data = crypto::digest(crypto::HashAlg::sha256, as_bytes(claims));
  s.report_data.resize(64, 0);
  Bytes report = snptest::build_report(s);
  snptest::sign_report(report, chip.vcek.key.get());
  Bytes blob(1236, 0);
  put32(blob, 0, azure::kHclSignature);
  put32(blob, 4, 1);
  put32(blob, 8, static_cast<std::uint32_t>(1236 + claims.size()));
  put32(blob, 12, 2);
  std::copy(report.begin(), report.end(), blob.begin() + 32);
  put32(blob, 1216, static_cast<std::uint32_t>(20 + claims.size()));
  put32(blob, 1220, 1);
  put32(blob, 1224, 2);
  put32(blob, 1228, 1);
  put32(blob, 1232, static_cast<std::uint32_t>(claims.size()));
  blob.insert(blob.end(), claims.begin(), claims.end());
  blob.resize(std::max<std::size_t>(blob.size(), 2600), 0);   // NV indexes are read whole (2600 bytes on Azure)
  return blob;
}

}  // namespace

TEST_CASE("Azure HCL report with HCLEkPub bound to the agent's EK: register and activate, negatives named",
          "[snp][azure][registrar]") {
  SnpRegistrar reg;
  SyntheticChip chip(reg.store, 50);
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  const nlohmann::json claims = {
      {"keys", {rsa_jwk("HCLAkPub", agent.ak_tpm2b_public()), rsa_jwk("HCLEkPub", agent.ek_tpm2b_public())}},
      {"vm-configuration", {{"secure-boot", true}, {"tpm-enabled", true}, {"vmUniqueId", "0F6C2A5E-TEST"}}}};
  const Bytes hcl = synthetic_hcl(chip, claims);
  const std::string id = "azure-cvm";

  testing::RegisterOptions o;
  o.agent_id = id;
  o.azure_hcl_report = hcl;
  auto r = reg.post(id, testing::registration_body(agent, o));
  INFO(r.body);
  REQUIRE(r.status == 200);
  auto blob = base64_decode(json_of(r)["results"]["blob"].get<std::string>());
  Bytes credential = agent.activate_credential(*blob);
  REQUIRE(reg.call("PUT", "/v2.6/agents/" + id, nlohmann::json{{"auth_tag", testing::auth_tag(credential, id)}}.dump())
              .status == 200);
  auto show = json_of(reg.call("GET", "/v2.6/agents/" + id, "", true))["results"];
  const auto& az = show["provider_keys"]["azure_hcl"];
  CHECK(az["hcl_ek_bound"] == true);
  CHECK(az["hcl_ak_bound"] == "aik_tpm");
  CHECK(az["vm_unique_id"] == "0F6C2A5E-TEST");
  CHECK(az["snp"]["chip_id"] == hex_encode(chip.chip));
  CHECK(show["ekcert"].is_null());
  // A later registration adding an SNP report in ekcert keeps the verified HCL fields beside the new ones.
  REQUIRE(reg.post(id, body_with_ekcert(agent, chip.surrogate_for(agent), id)).status == 200);
  auto both = nlohmann::json::parse(*storage::open_registrar_store("sqlite", reg.dir.path())->find(id)->provider_keys);
  CHECK(both.contains("azure_hcl"));
  CHECK(both["snp"]["chip_id"] == hex_encode(chip.chip));

  // The same blob in ekcert is accepted too and kept there as sent.
  testing::SoftwareAgent agent2(testing::SoftwareAgent::EkAlg::rsa2048);
  nlohmann::json claims2 = claims;
  claims2["keys"] = {rsa_jwk("HCLEkPub", agent2.ek_tpm2b_public())};
  const Bytes hcl2 = synthetic_hcl(chip, claims2);
  auto r2 = reg.post("azure-cvm-2", body_with_ekcert(agent2, hcl2, "azure-cvm-2"));
  INFO(r2.body);
  REQUIRE(r2.status == 200);
  auto rec = storage::open_registrar_store("sqlite", reg.dir.path())->find("azure-cvm-2");
  REQUIRE(rec);
  CHECK(rec->ekcert == base64_encode(hcl2));
  CHECK(nlohmann::json::parse(*rec->provider_keys)["azure_hcl"]["hcl_ak_bound"].is_null());

  testing::SoftwareAgent stranger(testing::SoftwareAgent::EkAlg::rsa2048);
  o.agent_id = "azure-bad";
  // HCLEkPub is another EK.
  expect_refused(reg, testing::registration_body(stranger, o), "ERR_EK_BINDING", "azure-bad");
  // Claims changed after the report was made: binding broken.
  Bytes edited = hcl;
  auto pos = std::search(edited.begin(), edited.end(), std::begin("secure-boot"), std::end("secure-boot") - 1);
  REQUIRE(pos != edited.end());
  *pos = 'S';
  o.azure_hcl_report = edited;
  expect_refused(reg, testing::registration_body(agent, o), "ERR_HCL_BINDING", "azure-bad");
  // The embedded report fails the launch policy.
  o.azure_hcl_report = synthetic_hcl(chip, claims, /*vmpl=*/2);
  expect_refused(reg, testing::registration_body(agent, o), "ERR_VMPL", "azure-bad");
}

TEST_CASE("IAK without IDevID beside an EK (Azure AK as IAK): accepted unless tpm_identity = iak_idevid",
          "[registrar][azure]") {
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  testing::TestCa ca = testing::make_test_ca("Azure Virtual TPM Root (test)");
  kl::ossl::Pkey iak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  REQUIRE(iak);
  auto iak_cert = testing::issue_certificate(iak.get(), "AK", ca.key.get(), ca.cert.get(), testing::LeafKind::ek);
  testing::RegisterOptions o;
  o.agent_id = "azure-iak";
  nlohmann::json body = testing::registration_body(agent, o);
  body["iak_tpm"] = base64_encode(tpm::marshal_tpm2b_public(tpm::tpmt_from_key(iak.get(), false)));
  body["iak_cert"] = base64_encode(testing::cert_to_der(iak_cert.get()));
  auto errors = [&](const nlohmann::json& b, registrar::TpmIdentity t) {
    registrar::RegistrationPolicy p;
    p.tpm_identity = t;
    std::string all;
    for (const auto& e : registrar::validate_registration(registrar::parse_registration(b, "azure-iak"), nullptr, p).errors)
      all += e + "; ";
    return all;
  };
  CHECK(errors(body, registrar::TpmIdentity::default_).empty());
  CHECK(errors(body, registrar::TpmIdentity::ek_cert_or_iak_idevid).empty());
  CHECK(errors(body, registrar::TpmIdentity::iak_idevid).find("idevid_tpm is required by configuration") !=
        std::string::npos);
  // Without an EK the upstream rule stands.
  auto no_ek = body;
  no_ek.erase("ek_tpm");
  CHECK(errors(no_ek, registrar::TpmIdentity::default_).find("idevid_cert is required") != std::string::npos);
  // Half an IDevID is still refused.
  auto half = body;
  half["idevid_tpm"] = body["iak_tpm"];
  CHECK(errors(half, registrar::TpmIdentity::default_).find("idevid_cert is required") != std::string::npos);
  // The IAK certificate's key must still be the IAK (verify step), and chain to tpm_cert_store.
  auto wrong = body;
  wrong["iak_tpm"] = body["aik_tpm"];
  registrar::RegistrationPolicy p;
  std::vector<ossl::X509Ptr> roots;
  roots.emplace_back(X509_dup(ca.cert.get()));
  const ek::TrustStore store = ek::TrustStore::from_certificates(std::move(roots));
  p.tpm_cert_store = &store;
  auto v = registrar::verify_registration(registrar::parse_registration(wrong, "azure-iak"), nullptr, p);
  REQUIRE(!v.errors.empty());
  CHECK(v.errors[0] == "iak_tpm must contain the same public key found in iak_cert");
}

TEST_CASE("MANIFEST vector: Turin VCEK (no report exists) through the registration path", "[snp][registrar]") {
  // A v3 Turin report for the Turin VCEK's hwID and TCB: product from CPUID, Turin TCB layout, 8-byte hwID store
  // lookup, pinned Turin ARK, extensions (fmcSPL, no spl4) all pass; the signature cannot (AMD's key is not ours).
  testing::SoftwareAgent agent(testing::SoftwareAgent::EkAlg::rsa2048);
  SnpRegistrar reg([](SurrogateSettings& s) { s.extra_ark_pins.clear(); }, std::nullopt, Roots::amd);
  // Turin roots next to Milan's (the ARKs are read at start-up: a second registrar below sees them).
  snptest::write_file(reg.store / "Turin" / "ark.pem", vector_file("amd-roots/turin_vcek_ark.pem"));
  snptest::write_file(reg.store / "Turin" / "ask.pem", vector_file("amd-roots/turin_vcek_ask.pem"));
  SnpRegistrar turin(
      [&](SurrogateSettings& s) {
        s.extra_ark_pins.clear();
        s.cert_store = reg.store;
      },
      std::nullopt, Roots::amd);

  const Bytes hwid = *hex_decode("1e550a8ee5cf9f4d");
  snp::TcbParts tcb{0, 0, 0, 9, 0, true};
  snp::LeafQuery q{snp::Product::turin, snp::VekKind::vcek, hwid, tcb};
  snptest::write_file(reg.store / snp::vcek_store_path(q), vector_file("turin-virtee/vcek_turin.der"));

  auto report_with = [&](snp::TcbParts t) {
    snptest::ReportSpec s;
    s.version = 3;
    s.cpuid_fam = 0x1A;
    s.cpuid_mod = 0x02;
    s.chip_id = hwid;
    s.chip_id.resize(64, 0);
    Bytes raw = snptest::build_report(s);
    const std::uint64_t v = snp::encode_tcb(t, snp::Product::turin);
    for (std::size_t off : {0x038, 0x180, 0x1E0, 0x1F0})
      for (int i = 0; i < 8; ++i) raw[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
    kl::ossl::Pkey k(EVP_EC_gen("secp384r1"));
    snptest::sign_report(raw, k.get());
    return raw;
  };
  expect_refused(turin, body_with_ekcert(agent, report_with(tcb), "snp-agent"), "ERR_REPORT_SIGNATURE");
  // fmc 1 in the report: the store has no VCEK for that TCB.
  snp::TcbParts fmc1 = tcb;
  fmc1.fmc = 1;
  expect_refused(turin, body_with_ekcert(agent, report_with(fmc1), "snp-agent"), "ERR_VEK_UNAVAILABLE");
  // The same VCEK filed under the fmc 1 key: the extension check catches the TCB difference.
  snptest::write_file(reg.store / snp::vcek_store_path(snp::LeafQuery{snp::Product::turin, snp::VekKind::vcek, hwid, fmc1}),
                      vector_file("turin-virtee/vcek_turin.der"));
  expect_refused(turin, body_with_ekcert(agent, report_with(fmc1), "snp-agent"), "ERR_VEK_MISMATCH");
}
