// The tenant's POST /v2.x/agents body (wire-contract §3.2) with every key present, as keylime_tenant sends it;
// tests change single fields of the result.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"

namespace kl::testing {

// A tpm_policy that allows only PCR 15 = zeros (the PCR the agents' quotes cover by default).
inline std::string pcr15_zero_policy() { return "{\"15\": [\"" + std::string(64, '0') + "\"], \"mask\": \"0x8000\"}"; }

inline nlohmann::json tenant_add_body(const std::string& ak_tpm_b64, std::uint16_t port, const std::string& mtls_cert,
                                      const std::string& tpm_policy = pcr15_zero_policy()) {
  return nlohmann::json{{"v", kl::base64_encode(kl::Bytes(32, 3))},
                        {"cloudagent_ip", "127.0.0.1"},
                        {"cloudagent_port", port},
                        {"verifier_ip", "127.0.0.1"},
                        {"verifier_port", 8881},
                        {"tpm_policy", tpm_policy},
                        {"runtime_policy", ""},
                        {"runtime_policy_name", nullptr},
                        {"runtime_policy_key", nullptr},
                        {"mb_policy", nullptr},
                        {"mb_policy_name", nullptr},
                        {"ima_sign_verification_keys", ""},
                        {"metadata", "{}"},
                        {"revocation_key", ""},
                        {"accept_tpm_hash_algs", {"sha256"}},
                        {"accept_tpm_encryption_algs", {"ecc", "rsa"}},
                        {"accept_tpm_signing_algs", {"rsassa", "ecdsa"}},
                        {"ak_tpm", ak_tpm_b64},
                        {"mtls_cert", mtls_cert},
                        {"supported_version", "2.6"}};
}

}  // namespace kl::testing
