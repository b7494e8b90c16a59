// Registration (POST /v{ver}/agents[/{id}]): parse -> verify -> validate -> build, wire-contract §2.3.
// Pure: no sockets, no database. The agents handler supplies the stored record and commits the result.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/ek/certificate_field.hpp"
#include "common/attest/ek/trust_store.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/service/storage/registrar_store.hpp"
#include "registrar/registrar_config.hpp"
#include "registrar/surrogate_check.hpp"

namespace kl::registrar {

// A request field: `present` = the key was in the body; `value` empty = JSON null or "" (upstream casts
// both to None).
// A field whose text could not be decoded is recorded as an error and left not present, as upstream
// (a failed cast never enters the change set).
template <class T>
struct Field {
  bool present = false;
  std::optional<T> value;
  bool has_value() const { return present && value.has_value(); }
};

struct MtlsCert {
  bool disabled = false;   // the literal "disabled" (any case)
  Bytes der;               // leaf DER when !disabled
  bool strict_der = true;
};

struct CertValue {
  ek::CertificateField cert;          // leaf (+ chain sent after it)
  Bytes der;                          // leaf DER as stored (base64 in the DB)
};

// Step 1: decoded request. Decoding problems are collected in `errors` ("<field> <reason>") rather than
// thrown, so the identity-immutability check (403) can still run first, as upstream does.
struct ParsedRegistration {
  std::string agent_id;
  Field<Bytes> ek_tpm, aik_tpm, iak_tpm, idevid_tpm;   // TPM2B_PUBLIC bytes (structure checked in verify)
  Field<CertValue> ekcert, iak_cert, idevid_cert;
  // `ekcert` held no X.509 certificate but an EK-certificate surrogate (an SEV-SNP report or an Azure HCL
  // report, detected by content once X.509 parsing failed). ekcert is then present without a certificate value.
  struct Surrogate {
    snp::EkcertKind kind = snp::EkcertKind::unrecognized;
    Bytes bytes;   // decoded ekcert, stored as sent
  };
  std::optional<Surrogate> ekcert_surrogate;
  Field<Bytes> azure_hcl_report;   // our optional field: the Azure HCL report (NV 0x01400001), base64 or hex
  Field<MtlsCert> mtls_cert;
  Field<std::string> ip;
  Field<int> port;
  std::optional<Bytes> iak_attest, iak_sign;
  // ek_tpm was absent and derived from ekcert's key in the TCG default EK template (agents <= Python 6.7).
  bool ek_tpm_derived = false;
  std::vector<std::string> errors;
};

// `body` is the JSON body (anything; a non-object contributes no fields, as upstream). `agent_id` is the
// path parameter, or empty to take it from the body's "agent_id" (v3 / POST /agents form).
ParsedRegistration parse_registration(const nlohmann::json& body, const std::string& path_agent_id);

// Binary field encodings accepted by upstream: strict base64, else hex (optional 0x). nullopt if neither.
std::optional<Bytes> decode_binary_field(const std::string& text);

struct RegistrationPolicy {
  TpmIdentity tpm_identity = TpmIdentity::default_;
  MalformedCertAction malformed_cert_action = MalformedCertAction::warn;
  EkChainCheck ek_cert_chain_check = EkChainCheck::enforce;
  const ek::TrustStore* tpm_cert_store = nullptr;   // required for IAK/IDevID and the EK chain check
  const SurrogateVerifier* surrogates = nullptr;     // SNP / Azure HCL checks; nullptr: surrogates refused
};

enum class Verdict { ok, invalid /*400*/, identity_violation /*403*/ };

struct CheckResult {
  Verdict verdict = Verdict::ok;
  std::vector<std::string> errors;     // for the log (upstream logs them, answers with a fixed text)
  std::vector<std::string> warnings;   // e.g. non-strict DER accepted under malformed_cert_action = warn
  std::string missing_issuer;          // EK/IAK/IDevID chain failure: issuer DN not found in tpm_cert_store
  std::string chain_field;             // which certificate field that was ("EK", "IAK", "IDevID")
  // An EK-certificate surrogate was checked: its failure (named in the 400) or, on success, the verified fields
  // the record keeps (provider_keys).
  std::optional<SurrogateOutcome> surrogate;
};

// Step 2a: TPM identity immutability against the stored record (403). Only ek_tpm, ekcert, aik_tpm.
CheckResult check_identity_immutable(const ParsedRegistration& req, const storage::RegistrarAgent* existing);

// Step 2b: cryptographic checks on the record as it would be after the update: TPM2B_PUBLIC structures,
// EK/IAK/IDevID key equals certificate key, certificate chains, AK<->IAK binding (TPM2_Certify), and an
// EK-certificate surrogate (SNP report / Azure HCL report) through policy.surrogates.
CheckResult verify_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                const RegistrationPolicy& policy);

// Step 2c: policy: root identity presence per tpm_identity, required fields, malformed_cert_action.
CheckResult validate_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                  const RegistrationPolicy& policy);

struct BuiltRegistration {
  storage::RegistrarAgent record;   // to insert/update
  std::string blob_base64;          // results.blob
};

// Step 3: the new record (regcount, active as §2.3 step 7) and the TPM2_MakeCredential challenge.
// `surrogate_evidence` (CheckResult::surrogate->evidence of a verified surrogate) goes to the legacy columns
// virtual = true / provider_keys, which upstream's GET /agents/{id} already renders (docs/snp-surrogates.md).
// Throws kl::ParseError when no challenge can be made (no usable EK / AK).
BuiltRegistration build_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                     const nlohmann::json& surrogate_evidence = nullptr);

}  // namespace kl::registrar
