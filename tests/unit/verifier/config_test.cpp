#include <catch2/catch.hpp>

#include "common/service/config/config.hpp"
#include "verifier/verifier_config.hpp"

using kl::config::Config;
using kl::config::ConfigError;
using kl::verifier::load_settings;

namespace {
kl::verifier::VerifierSettings load(const std::string& ini, std::map<std::string, std::string> env = {}) {
  env.emplace("KEYLIME_DIR", "/tmp/kl-test-dir");
  return load_settings(Config::from_string("verifier", ini, env), env);
}

std::string error_of(const std::string& ini, std::map<std::string, std::string> env = {}) {
  try {
    load(ini, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("verifier settings: upstream defaults without a file") {
  const auto s = load("");
  CHECK(s.uuid == "default");
  CHECK(s.ip == "127.0.0.1");
  CHECK(s.port == 8881);
  CHECK(s.registrar_port == 8891);
  CHECK(s.enable_agent_mtls);
  CHECK(s.generate_tls);
  CHECK(s.tls_dir == "/tmp/kl-test-dir/cv_ca");
  CHECK(s.server_cert == "/tmp/kl-test-dir/cv_ca/server-cert.crt");
  CHECK(s.client_key == "/tmp/kl-test-dir/cv_ca/client-private.pem");
  REQUIRE(s.trusted_client_ca.size() == 1);
  CHECK(s.trusted_client_ca[0] == "/tmp/kl-test-dir/cv_ca/cacert.crt");
  CHECK(s.quote_interval == 2.0);
  CHECK(s.retry_interval == 2.0);
  CHECK(s.max_retries == 5);
  CHECK(s.exponential_backoff);
  CHECK(s.request_timeout == 60.0);
  CHECK(s.severity_labels.size() == 7);
  CHECK(s.severity_policy.label_for("pcr_validation.invalid_pcr_15").name == "emergency");
  CHECK(s.revocations.notify_agents);
  CHECK_FALSE(s.revocations.notify_webhook);
  CHECK_FALSE(s.revocations.zeromq_requested);
  CHECK(s.revocations.zmq_port == 8992);
  CHECK(s.warnings.empty());
}

TEST_CASE("verifier settings: file values, env overrides and [revocations]") {
  const auto s = load(
      "[verifier]\nuuid = v1\nport = 9881\nquote_interval = 0.5\nmax_retries = 3\nexponential_backoff = False\n"
      "tls_dir = /etc/tls\nserver_cert = s.crt\ntrusted_server_ca = [\"a.crt\", \"b.crt\"]\n"
      "severity_labels = [\"low\", \"high\"]\nseverity_policy = [{\"event_id\": \"pcr_validation.*\", \"severity_label\": \"low\"}]\n"
      "[revocations]\nenabled_revocation_notifications = [\"agent\", \"webhook\"]\nwebhook_url = http://127.0.0.1:9/hook\n",
      {{"KEYLIME_VERIFIER_QUOTE_INTERVAL", "7"}});
  CHECK(s.uuid == "v1");
  CHECK(s.port == 9881);
  CHECK(s.quote_interval == 7.0);   // env wins over the file
  CHECK(s.max_retries == 3);
  CHECK_FALSE(s.exponential_backoff);
  CHECK_FALSE(s.generate_tls);
  CHECK(s.server_cert == "/etc/tls/s.crt");
  REQUIRE(s.trusted_server_ca.size() == 2);
  CHECK(s.trusted_server_ca[1] == "/etc/tls/b.crt");
  CHECK(s.severity_policy.label_for("pcr_validation.invalid_pcr_1").name == "low");
  CHECK(s.severity_policy.label_for("qoute_validation.quote_validation").name == "high");
  CHECK(s.revocations.notify_webhook);
  CHECK(s.revocations.webhook_url == "http://127.0.0.1:9/hook");
}

TEST_CASE("verifier settings: unknown keys warn, bad values name the key") {
  CHECK(load("[verifier]\nfrobnicate = 1\n").warnings.at(0).find("frobnicate") != std::string::npos);
  CHECK(error_of("[verifier]\nport = 70000\n").find("[verifier] port") != std::string::npos);
  CHECK(error_of("[verifier]\nquote_interval = soon\n").find("[verifier] quote_interval") != std::string::npos);
  CHECK(error_of("[verifier]\nmax_retries = -1\n").find("[verifier] max_retries") != std::string::npos);
  CHECK(error_of("[verifier]\nenable_agent_mtls = maybe\n").find("[verifier] enable_agent_mtls") != std::string::npos);
  CHECK(error_of("[verifier]\nmeasured_boot_evaluate = sometimes\n").find("measured_boot_evaluate") != std::string::npos);
  CHECK(error_of("[verifier]\nseverity_policy = not json\n").find("[verifier] severity_policy") != std::string::npos);
  CHECK(error_of("[verifier]\nmode = push\n").find("[verifier] mode") != std::string::npos);
  CHECK(error_of("[verifier]\nserver_cert = mine.crt\n").find("when tls_dir = generate") != std::string::npos);
  CHECK(error_of("[revocations]\nenabled_revocation_notifications = [\"pigeon\"]\n")
            .find("[revocations] enabled_revocation_notifications") != std::string::npos);
  CHECK(error_of("[revocations]\nzmq_port = x\n").find("[revocations] zmq_port") != std::string::npos);
  CHECK(load("[revocations]\nenabled_revocation_notifications = [\"zeromq\"]\n").revocations.zeromq_requested);
}

TEST_CASE("retry delay follows upstream's retry_time") {
  using kl::verifier::retry_delay;
  CHECK(retry_delay(true, 2.0, 3) == 8.0);
  CHECK(retry_delay(true, 1.0, 3) == 1.0);     // base <= 1: no growth
  CHECK(retry_delay(false, 2.0, 3) == 2.0);
  CHECK(retry_delay(true, 0.5, 4) == 0.5);
}
