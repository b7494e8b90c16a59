// verifiermain's columns <-> VerifierAgent members, in one table so every backend's SELECT, INSERT and
// UPDATE use the same list and cannot drift.
#pragma once

#include <iterator>
#include <string>
#include <variant>

#include "common/service/storage/verifier_store.hpp"

namespace kl::storage::verifier_columns {

using Field = std::variant<std::string VerifierAgent::*, std::optional<std::string> VerifierAgent::*,
                           std::optional<int> VerifierAgent::*, std::optional<long long> VerifierAgent::*,
                           std::optional<Bytes> VerifierAgent::*, bool VerifierAgent::*>;
struct Column {
  const char* name;  // quoted where SQL needs it
  Field field;
};
inline const Column kAgentColumns[] = {
    {"agent_id", &VerifierAgent::agent_id},
    {"v", &VerifierAgent::v},
    {"ip", &VerifierAgent::ip},
    {"port", &VerifierAgent::port},
    {"operational_state", &VerifierAgent::operational_state},
    {"public_key", &VerifierAgent::public_key},
    {"tpm_policy", &VerifierAgent::tpm_policy},
    {"meta_data", &VerifierAgent::meta_data},
    {"revocation_key", &VerifierAgent::revocation_key},
    {"tpm_version", &VerifierAgent::tpm_version},
    {"accept_tpm_hash_algs", &VerifierAgent::accept_tpm_hash_algs},
    {"accept_tpm_encryption_algs", &VerifierAgent::accept_tpm_encryption_algs},
    {"accept_tpm_signing_algs", &VerifierAgent::accept_tpm_signing_algs},
    {"hash_alg", &VerifierAgent::hash_alg},
    {"enc_alg", &VerifierAgent::enc_alg},
    {"sign_alg", &VerifierAgent::sign_alg},
    {"ima_sign_verification_keys", &VerifierAgent::ima_sign_verification_keys},
    {"verifier_id", &VerifierAgent::verifier_id},
    {"verifier_ip", &VerifierAgent::verifier_ip},
    {"verifier_port", &VerifierAgent::verifier_port},
    {"boottime", &VerifierAgent::boottime},
    {"ima_pcrs", &VerifierAgent::ima_pcrs},
    {"pcr10", &VerifierAgent::pcr10},
    {"next_ima_ml_entry", &VerifierAgent::next_ima_ml_entry},
    {"severity_level", &VerifierAgent::severity_level},
    {"last_event_id", &VerifierAgent::last_event_id},
    {"learned_ima_keyrings", &VerifierAgent::learned_ima_keyrings},
    {"supported_version", &VerifierAgent::supported_version},
    {"ak_tpm", &VerifierAgent::ak_tpm},
    {"mtls_cert", &VerifierAgent::mtls_cert},
    {"attestation_count", &VerifierAgent::attestation_count},
    {"ima_policy_id", &VerifierAgent::ima_policy_id},
    {"tpm_clockinfo", &VerifierAgent::tpm_clockinfo},
    {"last_received_quote", &VerifierAgent::last_received_quote},
    {"last_successful_attestation", &VerifierAgent::last_successful_attestation},
    {"mb_policy_id", &VerifierAgent::mb_policy_id},
    {"accept_attestations", &VerifierAgent::accept_attestations},
    {"consecutive_attestation_failures", &VerifierAgent::consecutive_attestation_failures},
};
inline constexpr int kNumAgentColumns = static_cast<int>(std::size(kAgentColumns));

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

inline std::string column_list() {
  std::string out;
  for (const auto& c : kAgentColumns) out += std::string(out.empty() ? "" : ", ") + c.name;
  return out;
}

// The statements both backends run over the column table; `placeholder` is the numbered-parameter sign of the
// SQL dialect ('$' for PostgreSQL, '?' for SQLite: $1 / ?1). Column 1 (agent_id) is the key of the UPDATE.
inline std::string select_agents_statement() { return "SELECT " + column_list() + " FROM verifiermain"; }
inline std::string insert_agent_statement(char placeholder) {
  std::string params;
  for (int i = 1; i <= kNumAgentColumns; ++i) params += (i > 1 ? ", " : "") + std::string(1, placeholder) + std::to_string(i);
  return "INSERT INTO verifiermain (" + column_list() + ") VALUES (" + params + ")";
}
inline std::string update_agent_statement(char placeholder) {
  std::string sets;
  for (int i = 1; i < kNumAgentColumns; ++i)
    sets += std::string(i > 1 ? ", " : "") + kAgentColumns[i].name + " = " + placeholder + std::to_string(i + 1);
  return "UPDATE verifiermain SET " + sets + " WHERE agent_id = " + placeholder + "1";
}

}  // namespace kl::storage::verifier_columns
