#include <catch2/catch.hpp>

#include "common/service/config/config.hpp"
#include "registrar/registrar_config.hpp"

using namespace kl;
using namespace kl::registrar;

namespace {
RegistrarSettings load(const std::string& ini, std::map<std::string, std::string> env = {}) {
  env.emplace("KEYLIME_DIR", "/srv/kl");
  return load_settings(config::Config::from_string("registrar", ini, env),
                       config::Config::from_string("tenant", "[tenant]\ntpm_cert_store = store\n", env), env);
}
}  // namespace

TEST_CASE("registrar settings: upstream defaults") {
  RegistrarSettings s = load("[registrar]\n");
  CHECK(s.ip == "127.0.0.1");
  CHECK(s.port == 8890);
  CHECK(s.tls_port == 8891);
  CHECK(s.tls_dir == "/srv/kl/cv_ca");
  CHECK(s.server_cert == "/srv/kl/cv_ca/server-cert.crt");
  CHECK(s.server_key == "/srv/kl/cv_ca/server-private.pem");
  REQUIRE(s.trusted_client_ca.size() == 1);
  CHECK(s.trusted_client_ca[0] == "/srv/kl/cv_ca/cacert.crt");
  CHECK(s.database_url == "sqlite");
  CHECK(s.tpm_identity == TpmIdentity::default_);
  CHECK(s.malformed_cert_action == MalformedCertAction::warn);
  CHECK(s.ek_cert_chain_check == EkChainCheck::enforce);
  CHECK(s.max_upload_size == 104857600);
  CHECK(s.tpm_cert_store == "/srv/kl/store");
  CHECK(s.warnings.empty());
}

TEST_CASE("registrar settings: tls_dir generate, paths, env overrides, unknown keys") {
  RegistrarSettings g = load("[registrar]\ntls_dir = generate\n");
  CHECK(g.generate_tls);
  CHECK(g.tls_dir == "/srv/kl/reg_ca");
  RegistrarSettings p = load("[registrar]\ntls_dir = /etc/certs\nserver_cert = s.crt\ntrusted_client_ca = [\"a.crt\", \"b.crt\"]\n");
  CHECK(p.server_cert == "/etc/certs/s.crt");
  REQUIRE(p.trusted_client_ca.size() == 2);
  CHECK(p.trusted_client_ca[1] == "/etc/certs/b.crt");
  RegistrarSettings e = load("[registrar]\nport = 1\n", {{"KEYLIME_REGISTRAR_PORT", "9999"}, {"KEYLIME_REGISTRAR_EK_CERT_CHAIN_CHECK", "off"}});
  CHECK(e.port == 9999);
  CHECK(e.ek_cert_chain_check == EkChainCheck::off);
  RegistrarSettings u = load("[registrar]\nbogus_key = 1\n");
  REQUIRE(u.warnings.size() == 1);
  CHECK(u.warnings[0].find("bogus_key") != std::string::npos);
  CHECK(load("[registrar]\ntrusted_client_ca = all\n").client_ca_all);
}

TEST_CASE("registrar settings: bad values name the key") {
  CHECK_THROWS_WITH(load("[registrar]\nport = abc\n"), Catch::Contains("port"));
  CHECK_THROWS_WITH(load("[registrar]\ntls_port = 70000\n"), Catch::Contains("tls_port"));
  CHECK_THROWS_WITH(load("[registrar]\ntpm_identity = tpm\n"), Catch::Contains("tpm_identity"));
  CHECK_THROWS_WITH(load("[registrar]\nmalformed_cert_action = maybe\n"), Catch::Contains("malformed_cert_action"));
  CHECK_THROWS_WITH(load("[registrar]\nek_cert_chain_check = sometimes\n"), Catch::Contains("ek_cert_chain_check"));
  CHECK_THROWS_WITH(load("[registrar]\nmax_upload_size = -5\n"), Catch::Contains("max_upload_size"));
  CHECK_THROWS_WITH(load("[registrar]\ntls_dir = generate\nserver_cert = x.crt\n"), Catch::Contains("server_cert"));
  CHECK_THROWS_AS(load("[registrar]\nport = abc\n"), config::ConfigError);
}
