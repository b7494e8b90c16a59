// registration_body: exactly the keys and encodings of wire-contract §2.3, for rust-keylime and Python 6.7.0.
#include <catch2/catch.hpp>

#include <set>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "support/cert_issue.hpp"
#include "support/swtpm.hpp"

using namespace kl::testing;

namespace {

std::set<std::string> keys_of(const nlohmann::json& j) {
  std::set<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.insert(it.key());
  return out;
}

kl::Bytes b64(const nlohmann::json& v) {
  REQUIRE(v.is_string());
  auto d = kl::base64_decode(v.get<std::string>());
  REQUIRE(d.has_value());
  return *d;
}

// The checks shared by every identity with an EK certificate.
void check_rust_body(const AgentIdentity& id, const nlohmann::json& body) {
  CHECK(keys_of(body) == std::set<std::string>{"aik_tpm", "ek_tpm", "ekcert", "iak_cert", "idevid_cert", "ip",
                                               "mtls_cert", "port"});
  CHECK(b64(body["aik_tpm"]) == id.ak_tpm2b_public());
  CHECK(b64(body["ek_tpm"]) == id.ek_tpm2b_public());
  CHECK_NOTHROW(kl::tpm::parse_tpm2b_public(b64(body["aik_tpm"])));
  REQUIRE(body["ekcert"].is_string());
  const std::string pem = body["ekcert"];
  CHECK(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
  CHECK(pem.size() > 30);
  CHECK(pem.substr(pem.size() - 26) == "-----END CERTIFICATE-----\n");
  CHECK(der_to_pem(*id.ek_certificate_der()) == pem);
  CHECK(body["iak_cert"].is_null());
  CHECK(body["idevid_cert"].is_null());
  CHECK(body["ip"] == "10.0.0.7");
  CHECK(body["port"].is_number_integer());
  CHECK(body["port"] == 9102);
  CHECK(body["mtls_cert"] == "disabled");
}

void check_python_body(const AgentIdentity& id, const nlohmann::json& body) {
  CHECK(keys_of(body) == std::set<std::string>{"aik_tpm", "ekcert", "ip", "mtls_cert", "port"});
  CHECK(b64(body["aik_tpm"]) == id.ak_tpm2b_public());
  CHECK(b64(body["ekcert"]) == *id.ek_certificate_der());   // base64 DER, not PEM
  CHECK(body["port"] == "9102");                            // the agent sends the config string
  CHECK(body["ip"] == "10.0.0.7");
  CHECK(body["mtls_cert"] == "disabled");
}

RegisterOptions options(RegisterOptions::Style style) {
  RegisterOptions o;
  o.agent_id = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
  o.contact_ip = "10.0.0.7";
  o.contact_port = 9102;
  o.style = style;
  return o;
}

}  // namespace

TEST_CASE("registration_body for a swtpm-backed agent", "[agent][registration][tpm]") {
  if (!Swtpm::available()) {
    WARN("swtpm not installed: skipped");
    return;
  }
  Swtpm tpm;
  TpmAgent agent(tpm.tcti());
  SECTION("rust-keylime") { check_rust_body(agent, registration_body(agent, options(RegisterOptions::Style::rust))); }
  SECTION("python 6.7.0") {
    check_python_body(agent, registration_body(agent, options(RegisterOptions::Style::python_6_7)));
  }
}

TEST_CASE("registration_body for a software agent", "[agent][registration]") {
  SoftwareAgent agent(SoftwareAgent::EkAlg::ecc_p256);
  SECTION("without an EK certificate") {
    const auto rust = registration_body(agent, options(RegisterOptions::Style::rust));
    // rust-keylime omits ekcert when the TPM has none, and still sends ek_tpm.
    CHECK(keys_of(rust) ==
          std::set<std::string>{"aik_tpm", "ek_tpm", "iak_cert", "idevid_cert", "ip", "mtls_cert", "port"});
    const auto py = registration_body(agent, options(RegisterOptions::Style::python_6_7));
    // Python 6.7.0 sends ekcert null and then includes ek_tpm.
    CHECK(keys_of(py) == std::set<std::string>{"aik_tpm", "ek_tpm", "ekcert", "ip", "mtls_cert", "port"});
    CHECK(py["ekcert"].is_null());
    CHECK(b64(py["ek_tpm"]) == agent.ek_tpm2b_public());
  }
  SECTION("with an EK certificate issued by a test CA") {
    auto ca = make_test_ca("test EK CA");
    const auto der = agent.issue_ek_certificate(ca.key.get(), ca.cert.get());
    CHECK(agent.ek_certificate_der() == der);
    auto cert = cert_from_der(der);
    REQUIRE(cert);
    CHECK(X509_verify(cert.get(), ca.key.get()) == 1);
    CHECK(kl::tpm::spki_der(X509_get0_pubkey(cert.get())) ==
          kl::tpm::spki_der(kl::tpm::public_key(kl::tpm::parse_tpm2b_public(agent.ek_tpm2b_public())).get()));
    check_rust_body(agent, registration_body(agent, options(RegisterOptions::Style::rust)));
    check_python_body(agent, registration_body(agent, options(RegisterOptions::Style::python_6_7)));
  }
  SECTION("mtls_cert PEM is passed through") {
    auto o = options(RegisterOptions::Style::rust);
    o.mtls_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    CHECK(registration_body(agent, o)["mtls_cert"] == o.mtls_cert);
  }
}
