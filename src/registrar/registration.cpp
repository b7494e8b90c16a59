#include "registrar/registration.hpp"

#include <algorithm>
#include <cctype>

#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/certify_binding.hpp"
#include "common/attest/tpm/make_credential.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/api/agent_id.hpp"

namespace kl::registrar {

namespace {

// ---------------------------------------------------------------------------------------------
// Decoding helpers

bool is_empty_value(const nlohmann::json& v) { return v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()); }

const nlohmann::json* member(const nlohmann::json& body, const char* key) {
  if (!body.is_object()) return nullptr;
  auto it = body.find(key);
  return it == body.end() ? nullptr : &*it;
}

void parse_binary(const nlohmann::json& body, const char* key, Field<Bytes>& out, std::vector<std::string>& errors) {
  const nlohmann::json* v = member(body, key);
  if (!v) return;
  if (is_empty_value(*v)) {
    out.present = true;
    return;
  }
  if (!v->is_string()) {
    errors.push_back(std::string(key) + " must be a string of base64 or hex encoded binary data");
    return;
  }
  auto bytes = decode_binary_field(v->get_ref<const std::string&>());
  if (!bytes) {
    errors.push_back(std::string(key) + " must be base64 or hex encoded binary data");
    return;
  }
  out.present = true;
  out.value = std::move(*bytes);
}

const char* const kCertError = " must be a valid X.509 certificate in PEM format or otherwise encoded using Base64";

std::optional<CertValue> decode_cert(const std::string& text) {
  CertValue cv{ek::decode_certificate_field(text), {}};
  // Store the leaf as received (upstream keeps the original bytes of a non-strict certificate, and the
  // tenant later verifies its signature, which re-encoding would break); compare identities canonically.
  cv.der = ek::to_der(cv.cert.leaf.get());
  return cv;
}

void parse_cert(const nlohmann::json& body, const char* key, Field<CertValue>& out, std::vector<std::string>& errors) {
  const nlohmann::json* v = member(body, key);
  if (!v) return;
  if (is_empty_value(*v)) {
    out.present = true;
    return;
  }
  if (!v->is_string()) {
    errors.push_back(std::string(key) + kCertError);
    return;
  }
  try {
    out.value = decode_cert(v->get_ref<const std::string&>());
    out.present = true;
  } catch (const std::exception& e) {
    errors.push_back(std::string(key) + kCertError + " (" + e.what() + ")");
  }
}

// ekcert: an X.509 certificate as upstream accepts it, else (spec snp-surrogate §6 step 1) base64/hex bytes that
// are an SEV-SNP report or an Azure HCL report; anything else keeps upstream's certificate error.
void parse_ekcert(const nlohmann::json& body, ParsedRegistration& r) {
  const nlohmann::json* v = member(body, "ekcert");
  if (!v || is_empty_value(*v) || !v->is_string()) {
    parse_cert(body, "ekcert", r.ekcert, r.errors);
    return;
  }
  const std::string& text = v->get_ref<const std::string&>();
  try {
    r.ekcert.value = decode_cert(text);
    r.ekcert.present = true;
    return;
  } catch (const std::exception& e) {
    std::optional<Bytes> bytes = decode_binary_field(text);
    if (!bytes) bytes = base64_decode_ignoring_whitespace(text);
    std::string also;
    if (bytes) {
      const snp::Detection d = snp::classify_ekcert(*bytes);
      if (d.kind == snp::EkcertKind::snp_report || d.kind == snp::EkcertKind::azure_hcl) {
        r.ekcert.present = true;
        r.ekcert_surrogate = ParsedRegistration::Surrogate{d.kind, std::move(*bytes)};
        return;
      }
      if (*d.reason) also = std::string("; as an EK-certificate surrogate: ") + d.reason;
    }
    r.errors.push_back(std::string("ekcert") + kCertError + " (" + e.what() + also + ")");
  }
}

std::optional<Bytes> stored_binary(const std::optional<std::string>& b64) {
  if (!b64 || b64->empty()) return std::nullopt;
  return base64_decode(*b64);
}

// The stored certificate of a field, decoded (nullopt if absent or undecodable).
std::optional<ek::CertificateField> stored_cert(const std::optional<std::string>& b64) {
  if (!b64 || b64->empty()) return std::nullopt;
  try {
    return ek::decode_certificate_field(*b64);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Effective value of a binary field after the update: the request's if present, else the stored one.
std::optional<Bytes> effective(const Field<Bytes>& f, const storage::RegistrarAgent* existing,
                               std::optional<std::string> storage::RegistrarAgent::*column) {
  if (f.present) return f.value;
  return existing ? stored_binary(existing->*column) : std::nullopt;
}

// Certificate after the update; `owned` keeps a decoded stored certificate alive.
const ek::CertificateField* effective_cert(const Field<CertValue>& f, const storage::RegistrarAgent* existing,
                                           std::optional<std::string> storage::RegistrarAgent::*column,
                                           std::optional<ek::CertificateField>& owned) {
  if (f.present) return f.value ? &f.value->cert : nullptr;
  if (!existing) return nullptr;
  owned = stored_cert(existing->*column);
  return owned ? &*owned : nullptr;
}

void fail(CheckResult& r, std::string error) {
  if (r.verdict == Verdict::ok) r.verdict = Verdict::invalid;
  r.errors.push_back(std::move(error));
}

// TPM key field vs certificate field (§2.3 step 2/3), only when one of the two changes.
void check_key_against_cert(CheckResult& r, const char* key_name, const Field<Bytes>& key_field,
                            const std::optional<Bytes>& key_bytes, const char* cert_name,
                            const Field<CertValue>& cert_field, const ek::CertificateField* cert) {
  if (!key_field.present && !cert_field.present) return;
  if (!key_bytes || !cert) return;
  ossl::Pkey key;
  try {
    key = tpm::public_key(tpm::parse_tpm2b_public(*key_bytes));
  } catch (const ParseError& e) {
    fail(r, std::string(key_name) + " must be a valid TPM2B_PUBLIC structure containing a valid RSA or EC public key (" +
                e.what() + ")");
    return;
  }
  if (!ek::certificate_has_key(cert->leaf.get(), key.get()))
    fail(r, std::string(key_name) + " must contain the same public key found in " + cert_name);
}

void check_chain(CheckResult& r, const RegistrationPolicy& policy, const char* field, const char* kind,
                 const ek::CertificateField& cert) {
  static const ek::TrustStore empty_store = ek::TrustStore::from_certificates({});
  const ek::TrustStore& store = policy.tpm_cert_store ? *policy.tpm_cert_store : empty_store;
  const ek::ChainVerdict v = ek::verify_chain(store, cert.leaf.get(), cert.chain);
  if (v.trusted) return;
  fail(r, std::string(field) + " must contain a certificate issued by a CA present in the trust store (" + v.error + ")");
  if (r.missing_issuer.empty()) {
    r.missing_issuer = v.missing_issuer.empty() ? ek::issuer_text(cert.leaf.get()) : v.missing_issuer;
    r.chain_field = kind;
  }
}

// EK-certificate surrogates (SEV-SNP report in ekcert, Azure HCL report in ekcert or azure_hcl_report): every one
// sent must verify; the EK binding uses ek_tpm exactly as sent (or as stored, byte for byte, when not resent).
void check_surrogates(CheckResult& r, const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                      const RegistrationPolicy& policy) {
  using A = storage::RegistrarAgent;
  const ParsedRegistration::Surrogate* in_ekcert = req.ekcert_surrogate ? &*req.ekcert_surrogate : nullptr;
  const Bytes* hcl_field = req.azure_hcl_report.has_value() ? &*req.azure_hcl_report.value : nullptr;
  if (!in_ekcert && !hcl_field) return;

  auto reject = [&](SurrogateOutcome o, const char* field) {
    fail(r, std::string(field) + " is not an acceptable EK-certificate surrogate: " + o.reason);
    r.surrogate = std::move(o);
  };
  if (!policy.surrogates) {
    SurrogateOutcome o;
    o.error = in_ekcert && in_ekcert->kind == snp::EkcertKind::snp_report ? snp::SnpError::report_malformed
                                                                         : snp::SnpError::hcl_malformed;
    o.reason = o.code() + ": EK-certificate surrogates are not accepted by this registrar";
    o.failed_checks = {o.code()};
    reject(std::move(o), in_ekcert ? "ekcert" : "azure_hcl_report");
    return;
  }
  const Bytes ek = effective(req.ek_tpm, existing, &A::ek_tpm).value_or(Bytes{});
  const Bytes ak = effective(req.aik_tpm, existing, &A::aik_tpm).value_or(Bytes{});
  const Bytes iak = effective(req.iak_tpm, existing, &A::iak_tpm).value_or(Bytes{});

  nlohmann::json keys = {{"ekcert", nullptr}};   // upstream's tenant reads provider_keys["ekcert"] when present
  if (in_ekcert && in_ekcert->kind == snp::EkcertKind::snp_report) {
    SurrogateOutcome o = policy.surrogates->check_snp(in_ekcert->bytes, ek);
    if (!o.ok()) return reject(std::move(o), "ekcert");
    keys["snp"] = std::move(o.evidence);
  }
  const Bytes* hcl = hcl_field;
  if (in_ekcert && in_ekcert->kind == snp::EkcertKind::azure_hcl) {
    if (hcl_field && *hcl_field != in_ekcert->bytes) {
      SurrogateOutcome o;
      o.error = snp::SnpError::hcl_malformed;
      o.reason = o.code() + ": ekcert and azure_hcl_report hold two different HCL reports";
      o.failed_checks = {o.code()};
      return reject(std::move(o), "azure_hcl_report");
    }
    hcl = &in_ekcert->bytes;
  }
  if (hcl) {
    SurrogateOutcome o = policy.surrogates->check_hcl(*hcl, ek, ak, iak);
    if (!o.ok()) return reject(std::move(o), hcl == hcl_field ? "azure_hcl_report" : "ekcert");
    keys["azure_hcl"] = std::move(o.evidence);
  }
  SurrogateOutcome ok;
  ok.evidence = std::move(keys);
  r.surrogate = std::move(ok);
}

bool tpm_identity_allows_iak_only(TpmIdentity t) { return t != TpmIdentity::iak_idevid; }

bool same_der(const Field<CertValue>& f, const std::optional<std::string>& stored) {
  if (!f.value || !stored) return false;
  return base64_encode(f.value->der) == *stored;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parse

std::optional<Bytes> decode_binary_field(const std::string& text) {
  if (auto b = base64_decode(text)) return b;
  return hex_decode(text);
}

ParsedRegistration parse_registration(const nlohmann::json& body, const std::string& path_agent_id) {
  ParsedRegistration r;
  if (!path_agent_id.empty()) {
    r.agent_id = path_agent_id;
  } else if (const nlohmann::json* id = member(body, "agent_id"); id && id->is_string()) {
    r.agent_id = id->get<std::string>();
  }

  parse_binary(body, "ek_tpm", r.ek_tpm, r.errors);
  parse_binary(body, "aik_tpm", r.aik_tpm, r.errors);
  parse_binary(body, "iak_tpm", r.iak_tpm, r.errors);
  parse_binary(body, "idevid_tpm", r.idevid_tpm, r.errors);
  // ek_tpm and aik_tpm are not nullable columns upstream ("cannot be null").
  for (auto [name, f] : {std::pair{"ek_tpm", &r.ek_tpm}, {"aik_tpm", &r.aik_tpm}}) {
    if (const nlohmann::json* v = member(body, name); v && v->is_null()) {
      r.errors.push_back(std::string(name) + " cannot be null");
      f->present = false;
    }
  }

  // The Python agent sent "emulator" for a TPM without an EK certificate.
  if (const nlohmann::json* v = member(body, "ekcert"); v && v->is_string() && *v == "emulator") {
    r.ekcert.present = true;
  } else {
    parse_ekcert(body, r);
  }
  parse_binary(body, "azure_hcl_report", r.azure_hcl_report, r.errors);
  parse_cert(body, "iak_cert", r.iak_cert, r.errors);
  parse_cert(body, "idevid_cert", r.idevid_cert, r.errors);

  if (const nlohmann::json* v = member(body, "mtls_cert")) {
    if (is_empty_value(*v)) {
      r.mtls_cert.present = true;
    } else if (!v->is_string()) {
      r.errors.push_back(std::string("mtls_cert") + kCertError);
    } else {
      std::string text = v->get<std::string>();
      std::string lowered = text;
      std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lowered == "disabled") {
        r.mtls_cert.present = true;
        r.mtls_cert.value = MtlsCert{true, {}, true};
      } else {
        try {
          auto cv = decode_cert(text);
          r.mtls_cert.present = true;
          r.mtls_cert.value = MtlsCert{false, cv->der, cv->cert.strict_der};
        } catch (const std::exception& e) {
          r.errors.push_back(std::string("mtls_cert") + kCertError + " (" + e.what() + ")");
        }
      }
    }
  }

  if (const nlohmann::json* v = member(body, "ip")) {
    if (is_empty_value(*v)) {
      r.ip.present = true;
    } else if (!v->is_string() || v->get_ref<const std::string&>().size() > 255) {
      r.errors.push_back("ip must be a string of at most 255 characters");
    } else {
      r.ip.present = true;
      r.ip.value = v->get<std::string>();
    }
  }

  if (const nlohmann::json* v = member(body, "port")) {
    std::optional<long long> n;
    if (is_empty_value(*v)) {
      r.port.present = true;
    } else if (v->is_number_integer()) {
      n = v->get<long long>();
    } else if (v->is_string()) {
      // The Python agent sends the port as text.
      const std::string& s = v->get_ref<const std::string&>();
      if (!s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
        n = std::stoll(s);
    }
    if (n && *n >= 0 && *n <= 65535) {
      r.port.present = true;
      r.port.value = static_cast<int>(*n);
    } else if (!r.port.present) {
      r.errors.push_back("port must be an integer between 0 and 65535");
    }
  }

  for (auto [name, out] : {std::pair{"iak_attest", &r.iak_attest}, {"iak_sign", &r.iak_sign}}) {
    const nlohmann::json* v = member(body, name);
    if (!v || is_empty_value(*v)) continue;
    if (v->is_string()) *out = decode_binary_field(v->get<std::string>());
    if (!*out) r.errors.push_back(std::string(name) + " must be base64 or hex encoded binary data");
  }

  // Agents up to the Python agent 6.7 send ekcert without ek_tpm; registrars up to 7.11 then used the EK
  // in the TCG default template built from the certificate's key. Do the same so they can register.
  if (!r.ek_tpm.present && !member(body, "ek_tpm") && r.ekcert.has_value()) {
    try {
      EVP_PKEY* key = X509_get0_pubkey(r.ekcert.value->cert.leaf.get());
      if (!key) throw ParseError("certificate has no usable public key");
      r.ek_tpm.value = tpm::marshal_tpm2b_public(tpm::tpmt_from_key(key, /*ek_template=*/true));
      r.ek_tpm.present = true;
      r.ek_tpm_derived = true;
    } catch (const std::exception& e) {
      r.errors.push_back(std::string("ekcert does not hold an RSA or EC key usable as an EK (") + e.what() + ")");
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Verify

CheckResult check_identity_immutable(const ParsedRegistration& req, const storage::RegistrarAgent* existing) {
  CheckResult r;
  if (!existing) return r;
  std::vector<std::string> changed;
  auto check_binary = [&](const char* name, const Field<Bytes>& f, const std::optional<std::string>& stored) {
    if (!f.present || !stored || stored->empty()) return;   // setting a previously unset field is allowed
    if (!f.value) {
      changed.push_back(name);
      return;
    }
    auto old = base64_decode(*stored);
    if (!old || *old != *f.value) changed.push_back(name);
  };
  check_binary("ek_tpm", req.ek_tpm, existing->ek_tpm);
  if (req.ekcert.present && existing->ekcert && !existing->ekcert->empty()) {
    if (req.ekcert_surrogate) {
      // A surrogate is stored as sent: the same bytes must come again.
      if (base64_encode(req.ekcert_surrogate->bytes) != *existing->ekcert) changed.push_back("ekcert");
    } else if (!req.ekcert.value) {
      changed.push_back("ekcert");
    } else {
      // Compare canonical DER so a non-strict certificate stored by upstream equals the same one resent.
      auto old = stored_cert(existing->ekcert);
      if (!old || old->leaf_der != req.ekcert.value->cert.leaf_der) changed.push_back("ekcert");
    }
  }
  check_binary("aik_tpm", req.aik_tpm, existing->aik_tpm);
  if (!changed.empty()) {
    r.verdict = Verdict::identity_violation;
    std::string list;
    for (const auto& c : changed) list += (list.empty() ? "" : ", ") + c;
    r.errors.push_back("agent_id cannot re-register with different TPM identity. Changed fields: " + list +
                       ". To register this UUID with a new TPM, delete the existing agent record first.");
  }
  return r;
}

CheckResult verify_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                const RegistrationPolicy& policy) {
  using A = storage::RegistrarAgent;
  CheckResult r;

  // Every TPM2B_PUBLIC sent must be well-formed and hold a usable RSA/EC key, whether or not a certificate
  // accompanies it. The EK's key is imported again by make_credential (a failure there is a 400 too), so
  // here it only gets the structural check: an EC key import costs tens of microseconds on OpenSSL 3.
  for (auto [name, f, import_key] : {std::tuple{"ek_tpm", &req.ek_tpm, false}, {"aik_tpm", &req.aik_tpm, true},
                                     {"iak_tpm", &req.iak_tpm, true}, {"idevid_tpm", &req.idevid_tpm, true}}) {
    if (!f->value) continue;
    try {
      tpm::PublicArea area = tpm::parse_tpm2b_public(*f->value);
      if (import_key) (void)tpm::public_key(area);
      (void)tpm::name_of(area);
    } catch (const ParseError& e) {
      fail(r, std::string(name) + " must be a valid TPM2B_PUBLIC structure containing a valid RSA or EC public key (" +
                  e.what() + ")");
    }
  }
  if (r.verdict != Verdict::ok) return r;

  std::optional<ek::CertificateField> ek_owned, iak_owned, idevid_owned;
  const auto* ekcert = effective_cert(req.ekcert, existing, &A::ekcert, ek_owned);
  const auto* iak_cert = effective_cert(req.iak_cert, existing, &A::iak_cert, iak_owned);
  const auto* idevid_cert = effective_cert(req.idevid_cert, existing, &A::idevid_cert, idevid_owned);
  const auto ek_tpm = effective(req.ek_tpm, existing, &A::ek_tpm);
  const auto iak_tpm = effective(req.iak_tpm, existing, &A::iak_tpm);
  const auto idevid_tpm = effective(req.idevid_tpm, existing, &A::idevid_tpm);

  check_key_against_cert(r, "ek_tpm", req.ek_tpm, ek_tpm, "ekcert", req.ekcert, ekcert);
  check_key_against_cert(r, "iak_tpm", req.iak_tpm, iak_tpm, "iak_cert", req.iak_cert, iak_cert);
  check_key_against_cert(r, "idevid_tpm", req.idevid_tpm, idevid_tpm, "idevid_cert", req.idevid_cert, idevid_cert);

  // Beyond upstream (on by default): a received EK certificate must chain to tpm_cert_store.
  if (policy.ek_cert_chain_check == EkChainCheck::enforce && req.ekcert.value)
    check_chain(r, policy, "ekcert", "EK", req.ekcert.value->cert);
  if (req.iak_cert.value) check_chain(r, policy, "iak_cert", "IAK", req.iak_cert.value->cert);
  if (req.idevid_cert.value) check_chain(r, policy, "idevid_cert", "IDevID", req.idevid_cert.value->cert);

  check_surrogates(r, req, existing, policy);

  // AK <-> IAK binding, when both keys arrive in this request (§2.3 step 4).
  if (req.aik_tpm.value && req.iak_tpm.value) {
    if (!req.iak_attest || !req.iak_sign) {
      fail(r, "aik_tpm cannot be bound to the IAK because of a missing 'iak_attest' or 'iak_sign'");
    } else {
      try {
        const tpm::PublicArea ak = tpm::parse_tpm2b_public(*req.aik_tpm.value);
        const ossl::Pkey iak_key = tpm::public_key(tpm::parse_tpm2b_public(*req.iak_tpm.value));
        const tpm::BindingError e =
            tpm::verify_ak_iak_binding(*req.iak_attest, *req.iak_sign, iak_key.get(), tpm::name_of(ak), req.agent_id);
        if (e != tpm::BindingError::none)
          fail(r, "aik_tpm cannot be confirmed as having been created by the same TPM as the IAK (" +
                      std::string(tpm::binding_error_text(e)) + ")");
      } catch (const ParseError& e) {
        fail(r, std::string("aik_tpm cannot be confirmed as having been created by the same TPM as the IAK (") +
                    e.what() + ")");
      }
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Validate

CheckResult validate_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                  const RegistrationPolicy& policy) {
  using A = storage::RegistrarAgent;
  CheckResult r;
  if (!api::valid_agent_id(req.agent_id)) fail(r, "agent_id must be 1-80 characters of [A-Za-z0-9_.-] without '..'");

  auto has = [&](const Field<Bytes>& f, std::optional<std::string> A::*col) {
    return effective(f, existing, col).has_value();
  };
  auto has_cert = [&](const Field<CertValue>& f, std::optional<std::string> A::*col) {
    if (f.present) return f.value.has_value();
    return existing && (existing->*col) && !(existing->*col)->empty();
  };
  const bool ek = has(req.ek_tpm, &A::ek_tpm);
  const bool iak = has(req.iak_tpm, &A::iak_tpm);
  const bool idevid = has(req.idevid_tpm, &A::idevid_tpm);

  switch (policy.tpm_identity) {
    case TpmIdentity::iak_idevid:
      if (!iak) fail(r, "iak_tpm is required by configuration");
      if (!idevid) fail(r, "idevid_tpm is required by configuration");
      break;
    case TpmIdentity::ek_cert:
      if (!ek) fail(r, "ek_tpm is required by configuration");
      break;
    case TpmIdentity::default_:
    case TpmIdentity::ek_cert_or_iak_idevid:
      if (!iak && !ek) fail(r, "iak_tpm is required in absence of an EK");
      if (!idevid && !ek) fail(r, "idevid_tpm is required in absence of an EK");
      if (!ek && !iak && !idevid) fail(r, "ek_tpm is required in absence of an IAK and IDevID");
      break;
  }
  // Beyond upstream: an IAK without any IDevID is accepted beside an EK (the EK stays the root identity). That is
  // how a vTPM that only has an attestation-key certificate (Azure's AK at 0x81000003, certificate in NV
  // 0x01C101D0) registers it: iak_tpm + iak_cert, no IDevID. Upstream demands both pairs together.
  const bool iak_only = ek && tpm_identity_allows_iak_only(policy.tpm_identity) && !idevid &&
                        !has_cert(req.idevid_cert, &A::idevid_cert);
  if (req.iak_tpm.value || req.idevid_tpm.value) {
    if (!has_cert(req.iak_cert, &A::iak_cert)) fail(r, "iak_cert is required when IDevID/IAK key is provided");
    if (!iak_only && !has_cert(req.idevid_cert, &A::idevid_cert))
      fail(r, "idevid_cert is required when IDevID/IAK key is provided");
  }
  if (req.iak_cert.value || req.idevid_cert.value) {
    if (!iak) fail(r, "iak_tpm is required when IDevID/IAK certificate is provided");
    if (!iak_only && !idevid) fail(r, "idevid_tpm is required when IDevID/IAK certificate is provided");
  }
  if (!has(req.aik_tpm, &A::aik_tpm)) fail(r, "aik_tpm is required");
  // The activation challenge is encrypted to the EK (§2.3 step 8).
  if (!ek) fail(r, "ek_tpm is required to produce the activation challenge");

  // Certificates that are not strict DER (§2.3, malformed_cert_action); unchanged ones are not re-judged.
  auto judge = [&](const char* name, bool strict, bool unchanged) {
    if (strict || unchanged || policy.malformed_cert_action == MalformedCertAction::ignore) return;
    if (policy.malformed_cert_action == MalformedCertAction::reject)
      fail(r, std::string(name) + " must be a certificate in strict ASN.1 DER encoding (malformed_cert_action = reject)");
    else
      r.warnings.push_back(std::string("certificate '") + name +
                           "' may not conform to strict ASN.1 DER encoding rules and was re-encoded before parsing");
  };
  for (auto [name, f, col] : {std::tuple{"ekcert", &req.ekcert, &A::ekcert}, {"iak_cert", &req.iak_cert, &A::iak_cert},
                              {"idevid_cert", &req.idevid_cert, &A::idevid_cert}}) {
    if (f->value) judge(name, f->value->cert.strict_der, existing && same_der(*f, existing->*col));
  }
  if (req.mtls_cert.value && !req.mtls_cert.value->disabled)
    judge("mtls_cert", req.mtls_cert.value->strict_der,
          existing && existing->mtls_cert && *existing->mtls_cert == base64_encode(req.mtls_cert.value->der));
  return r;
}

// ---------------------------------------------------------------------------------------------
// Build

BuiltRegistration build_registration(const ParsedRegistration& req, const storage::RegistrarAgent* existing,
                                     const nlohmann::json& surrogate_evidence) {
  BuiltRegistration out;
  storage::RegistrarAgent& a = out.record;
  if (existing) {
    a = *existing;
  } else {
    a.agent_id = req.agent_id;
    a.active = false;
    a.regcount = 0;
  }
  auto set_binary = [](std::optional<std::string>& col, const Field<Bytes>& f) {
    if (f.present) col = f.value ? std::optional<std::string>(base64_encode(*f.value)) : std::nullopt;
  };
  auto set_cert = [](std::optional<std::string>& col, const Field<CertValue>& f) {
    if (f.present) col = f.value ? std::optional<std::string>(base64_encode(f.value->der)) : std::nullopt;
  };
  set_binary(a.ek_tpm, req.ek_tpm);
  set_binary(a.aik_tpm, req.aik_tpm);
  set_binary(a.iak_tpm, req.iak_tpm);
  set_binary(a.idevid_tpm, req.idevid_tpm);
  set_cert(a.ekcert, req.ekcert);
  set_cert(a.iak_cert, req.iak_cert);
  set_cert(a.idevid_cert, req.idevid_cert);
  // A surrogate stays in ekcert as the agent sent it (the SVSM-vTPM PoC's tenant re-checks it from there); its
  // verified fields go to the legacy virtual / provider_keys columns, which GET /agents/{id} renders.
  if (req.ekcert_surrogate) a.ekcert = base64_encode(req.ekcert_surrogate->bytes);
  if (surrogate_evidence.is_object()) {
    // Keep what an earlier registration verified and this one did not resend (e.g. the SNP report in ekcert when
    // only an HCL report comes now).
    nlohmann::json keys = nlohmann::json::object();
    if (a.virtual_flag.value_or(false) && a.provider_keys)
      keys = nlohmann::json::parse(*a.provider_keys, nullptr, /*allow_exceptions=*/false);
    if (!keys.is_object()) keys = nlohmann::json::object();
    keys.update(surrogate_evidence);
    a.virtual_flag = true;
    a.provider_keys = keys.dump();
  }
  if (req.mtls_cert.present) {
    if (!req.mtls_cert.value) a.mtls_cert.reset();
    else a.mtls_cert = req.mtls_cert.value->disabled ? "disabled" : base64_encode(req.mtls_cert.value->der);
  }
  if (req.ip.present) a.ip = req.ip.value;
  if (req.port.present) a.port = req.port.value;

  // §2.3 step 7: a new EK or AK must be proven again; any identity field counts as a registration.
  if (req.ek_tpm.present || req.aik_tpm.present) a.active = false;
  if (req.ek_tpm.present || req.ekcert.present || req.aik_tpm.present || req.iak_tpm.present ||
      req.iak_cert.present || req.idevid_tpm.present || req.idevid_cert.present)
    a.regcount += 1;

  // §2.4: the credential is 32 alphanumeric characters; its base64 is the HMAC key kept in `key`.
  const auto ek_bytes = a.ek_tpm ? base64_decode(*a.ek_tpm) : std::nullopt;
  const auto ak_bytes = a.aik_tpm ? base64_decode(*a.aik_tpm) : std::nullopt;
  if (!ek_bytes || !ak_bytes) throw ParseError("an EK and an AK are needed to produce the activation challenge");
  const tpm::PublicArea ek = tpm::parse_tpm2b_public(*ek_bytes);
  const tpm::PublicArea ak = tpm::parse_tpm2b_public(*ak_bytes);
  const std::string credential = tpm::random_challenge();
  const Bytes blob = tpm::make_credential(ek, tpm::name_of(ak), as_bytes(credential));
  a.key = base64_encode(as_bytes(credential));
  out.blob_base64 = base64_encode(blob);
  return out;
}

}  // namespace kl::registrar
