// The upstream sample registration (registrar-get-agent-v2.1.json, written by Keylime HEAD for a swtpm agent).
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace regtest {

inline nlohmann::json sample_agent() {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/keylime-db/registrar-get-agent-v2.1.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str())["results"];
}

// What the Rust agent would send for the sample agent (ekcert as base64 DER also accepted).
inline nlohmann::json sample_body() {
  auto s = sample_agent();
  return {{"ek_tpm", s["ek_tpm"]}, {"aik_tpm", s["aik_tpm"]}, {"ekcert", s["ekcert"]}, {"iak_cert", nullptr},
          {"idevid_cert", nullptr}, {"ip", s["ip"]}, {"port", s["port"]}, {"mtls_cert", s["mtls_cert"]}};
}

}  // namespace regtest
