#include "common/service/storage/pg_schema.hpp"

#include <set>

#include "common/service/storage/registrar_store.hpp"  // StorageError

namespace kl::storage::pg_schema {

const std::vector<Table>& registrar_tables() {
  static const std::vector<Table> t{
      {"alembic_version_registrar",
       "CREATE TABLE alembic_version_registrar (\n"
       "\tversion_num VARCHAR(32) NOT NULL, \n"
       "\tCONSTRAINT alembic_version_registrar_pkc PRIMARY KEY (version_num)\n"
       ")"},
      {"registrarmain",
       "CREATE TABLE registrarmain (\n"
       "\tagent_id VARCHAR(80) NOT NULL, \n"
       "\t\"key\" VARCHAR(45), \n"
       "\tekcert TEXT, \n"
       "\t\"virtual\" BOOLEAN, \n"
       "\tactive BOOLEAN, \n"
       "\tprovider_keys TEXT, \n"
       "\tregcount INTEGER, \n"
       "\taik_tpm VARCHAR(500), \n"
       "\tek_tpm VARCHAR(500), \n"
       "\tip VARCHAR(15), \n"
       "\tport INTEGER, \n"
       "\tmtls_cert TEXT, \n"
       "\tiak_tpm VARCHAR(500), \n"
       "\tidevid_tpm VARCHAR(500), \n"
       "\tiak_cert VARCHAR(2048), \n"
       "\tidevid_cert VARCHAR(2048), \n"
       "\tPRIMARY KEY (agent_id)\n"
       ")"},
  };
  return t;
}

const std::vector<Table>& verifier_tables() {
  static const std::vector<Table> t{
      {"alembic_version_cloud_verifier",
       "CREATE TABLE alembic_version_cloud_verifier (\n"
       "\tversion_num VARCHAR(32) NOT NULL, \n"
       "\tCONSTRAINT alembic_version_cloud_verifier_pkc PRIMARY KEY (version_num)\n"
       ")"},
      {"allowlists",
       "CREATE TABLE allowlists (\n"
       "\tid SERIAL NOT NULL, \n"
       "\tname VARCHAR(255) NOT NULL, \n"
       "\ttpm_policy TEXT, \n"
       "\tima_policy TEXT, \n"
       "\tchecksum VARCHAR(128), \n"
       "\tgenerator INTEGER, \n"
       "\tPRIMARY KEY (id), \n"
       "\tCONSTRAINT uniq_allowlists0name UNIQUE (name)\n"
       ")"},
      {"ix_allowlists_checksum", "CREATE INDEX ix_allowlists_checksum ON allowlists (checksum)"},
      {"mbpolicies",
       "CREATE TABLE mbpolicies (\n"
       "\tid SERIAL NOT NULL, \n"
       "\tname VARCHAR(255) NOT NULL, \n"
       "\tmb_policy TEXT, \n"
       "\tPRIMARY KEY (id), \n"
       "\tCONSTRAINT uniq_mbpolicies_name UNIQUE (name)\n"
       ")"},
      {"verifiermain",
       "CREATE TABLE verifiermain (\n"
       "\tagent_id VARCHAR(80) NOT NULL, \n"
       "\tv VARCHAR(45), \n"
       "\tip VARCHAR(255), \n"
       "\tport INTEGER, \n"
       "\toperational_state INTEGER, \n"
       "\tpublic_key VARCHAR(500), \n"
       "\ttpm_policy TEXT, \n"
       "\tmeta_data TEXT, \n"
       "\trevocation_key VARCHAR(2800), \n"
       "\ttpm_version INTEGER, \n"
       "\taccept_tpm_hash_algs TEXT, \n"
       "\taccept_tpm_encryption_algs TEXT, \n"
       "\taccept_tpm_signing_algs TEXT, \n"
       "\thash_alg VARCHAR(10), \n"
       "\tenc_alg VARCHAR(10), \n"
       "\tsign_alg VARCHAR(10), \n"
       "\tima_sign_verification_keys VARCHAR(1000), \n"
       "\tverifier_id VARCHAR(100), \n"
       "\tverifier_ip VARCHAR(255), \n"
       "\tverifier_port INTEGER, \n"
       "\tboottime INTEGER, \n"
       "\tima_pcrs TEXT, \n"
       "\tpcr10 BYTEA, \n"
       "\tnext_ima_ml_entry INTEGER, \n"
       "\tseverity_level INTEGER, \n"
       "\tlast_event_id VARCHAR(100), \n"
       "\tlearned_ima_keyrings TEXT, \n"
       "\tsupported_version VARCHAR(50), \n"
       "\tak_tpm VARCHAR(500), \n"
       "\tmtls_cert VARCHAR(2084), \n"
       "\tattestation_count INTEGER, \n"
       "\tima_policy_id INTEGER, \n"
       "\ttpm_clockinfo TEXT, \n"
       "\tlast_received_quote INTEGER, \n"
       "\tlast_successful_attestation INTEGER, \n"
       "\tmb_policy_id INTEGER, \n"
       "\taccept_attestations BOOLEAN DEFAULT true NOT NULL, \n"
       "\tconsecutive_attestation_failures INTEGER, \n"
       "\tPRIMARY KEY (agent_id), \n"
       "\tCONSTRAINT fk_verifiermain_mbpolicies FOREIGN KEY(mb_policy_id) REFERENCES mbpolicies (id), \n"
       "\tCONSTRAINT fk_verifiermain_allowlists FOREIGN KEY(ima_policy_id) REFERENCES allowlists (id)\n"
       ")"},
      {"attestations",
       "CREATE TABLE attestations (\n"
       "\tagent_id VARCHAR(80) NOT NULL, \n"
       "\t\"index\" INTEGER NOT NULL, \n"
       "\tstage VARCHAR(25) DEFAULT 'awaiting_evidence' NOT NULL, \n"
       "\tevaluation VARCHAR(10) DEFAULT 'pending' NOT NULL, \n"
       "\tfailure_reason VARCHAR(25), \n"
       "\tsystem_info__boot_time VARCHAR(32) NOT NULL, \n"
       "\tcapabilities_received_at VARCHAR(32) NOT NULL, \n"
       "\tchallenges_expire_at VARCHAR(32), \n"
       "\tevidence_received_at VARCHAR(32), \n"
       "\tverification_completed_at VARCHAR(32), \n"
       "\tPRIMARY KEY (agent_id, \"index\"), \n"
       "\tFOREIGN KEY(agent_id) REFERENCES verifiermain (agent_id)\n"
       ")"},
      {"sessions",
       "CREATE TABLE sessions (\n"
       "\tsession_id VARCHAR(36) NOT NULL, \n"
       "\ttoken_hash VARCHAR(64) NOT NULL, \n"
       "\ttoken_salt VARCHAR(32) NOT NULL, \n"
       "\tagent_id VARCHAR(80), \n"
       "\tactive BOOLEAN, \n"
       "\tnonce BYTEA, \n"
       "\thash_algorithm VARCHAR(15), \n"
       "\tsigning_scheme VARCHAR(15), \n"
       "\tak_attest BYTEA, \n"
       "\tak_sign BYTEA, \n"
       "\tnonce_created_at VARCHAR(32), \n"
       "\tnonce_expires_at VARCHAR(32), \n"
       "\tpop_received_at VARCHAR(32), \n"
       "\ttoken_expires_at VARCHAR(32), \n"
       "\tPRIMARY KEY (session_id)\n"
       ")"},
      {"ix_sessions_agent_id", "CREATE INDEX ix_sessions_agent_id ON sessions (agent_id)"},
      {"evidence_items",
       "CREATE TABLE evidence_items (\n"
       "\tid SERIAL NOT NULL, \n"
       "\tagent_id VARCHAR(80) NOT NULL, \n"
       "\tattestation_index INTEGER NOT NULL, \n"
       "\tevidence_class VARCHAR(20) NOT NULL, \n"
       "\tevidence_type VARCHAR(30) NOT NULL, \n"
       "\tcapabilities__component_version VARCHAR(20), \n"
       "\tcapabilities__evidence_version VARCHAR(20), \n"
       "\tcapabilities__signature_schemes TEXT, \n"
       "\tcapabilities__hash_algorithms TEXT, \n"
       "\tcapabilities__available_subjects TEXT, \n"
       "\tcapabilities__certification_keys TEXT, \n"
       "\tcapabilities__entry_count INTEGER, \n"
       "\tcapabilities__supports_partial_access BOOLEAN, \n"
       "\tcapabilities__appendable BOOLEAN, \n"
       "\tcapabilities__formats TEXT, \n"
       "\tcapabilities__meta TEXT, \n"
       "\tchosen_parameters__challenge BYTEA, \n"
       "\tchosen_parameters__signature_scheme VARCHAR(20), \n"
       "\tchosen_parameters__hash_algorithm VARCHAR(20), \n"
       "\tchosen_parameters__selected_subjects TEXT, \n"
       "\tchosen_parameters__certification_key TEXT, \n"
       "\tchosen_parameters__starting_offset INTEGER, \n"
       "\tchosen_parameters__entry_count INTEGER, \n"
       "\tchosen_parameters__format VARCHAR(255), \n"
       "\tchosen_parameters__meta TEXT, \n"
       "\tdata__subject_data TEXT, \n"
       "\tdata__message BYTEA, \n"
       "\tdata__signature BYTEA, \n"
       "\tdata__entry_count INTEGER, \n"
       "\tdata__entries TEXT, \n"
       "\tdata__meta TEXT, \n"
       "\tresults__certified_entry_count INTEGER, \n"
       "\tresults__meta TEXT, \n"
       "\tPRIMARY KEY (id), \n"
       "\tFOREIGN KEY(agent_id, attestation_index) REFERENCES attestations (agent_id, \"index\")\n"
       ")"},
  };
  return t;
}

namespace {

bool relation_exists(PgConnection& c, const std::string& name) {
  auto r = c.exec("SELECT to_regclass($1::text) IS NOT NULL", PgParams().text(name));
  return r.boolean(0, 0).value_or(false);
}

}  // namespace

void ensure(PgConnection& c, const std::vector<Table>& tables, const std::string& main_table,
            const std::vector<std::string>& main_columns, const std::string& alembic_table) {
  PgTransaction tx(c);
  // Any fixed key: the lock only orders schema set-up between our own processes.
  c.exec("SELECT pg_advisory_xact_lock(7245921)");
  if (relation_exists(c, main_table)) {
    std::set<std::string> have;
    auto r = c.exec("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = $1::text",
                    PgParams().text(main_table));
    for (int i = 0; i < r.rows(); ++i) have.insert(r.text(i, 0).value_or(""));
    std::string missing;
    for (const auto& col : main_columns)
      if (!have.count(col)) missing += (missing.empty() ? "" : ", ") + col;
    if (!missing.empty())
      throw StorageError(main_table + " lacks column(s) " + missing + "; migrate it to alembic revision " +
                         kAlembicRevision + " with upstream Keylime first");
    tx.commit();
    return;
  }
  const bool stamp = !relation_exists(c, alembic_table);
  for (const auto& t : tables)
    if (!relation_exists(c, t.name)) c.command(t.ddl);
  if (stamp)
    c.exec("INSERT INTO " + alembic_table + " (version_num) VALUES ($1)", PgParams().text(std::string(kAlembicRevision)));
  tx.commit();
}

}  // namespace kl::storage::pg_schema
