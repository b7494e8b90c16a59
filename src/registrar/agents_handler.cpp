#include "registrar/agents_handler.hpp"

#include <cctype>
#include <mutex>

#include "common/attest/parse_error.hpp"
#include "common/service/http/json_response.hpp"
#include "registrar/activation.hpp"
#include "common/service/api/agent_id.hpp"
#include "registrar/registration.hpp"
#include "common/service/api/strict_json.hpp"

namespace kl::registrar {

namespace {

const char* const kInvalidData = "Could not register agent with invalid data";
const char* const kIdentityForbidden =
    "Agent re-registration with different TPM identity is forbidden for security reasons";

std::string not_found_text(const std::string& id) { return "Agent with ID '" + id + "' not found"; }

// Upstream parses a JSON body only with a JSON Content-Type; agents up to Python 6.7 send none, so a
// missing Content-Type (or text/plain) is read as JSON too. Other media types contribute no fields.
bool body_is_json(const http::Request& req) {
  const std::string* ct = req.header("content-type");
  if (!ct || ct->empty()) return true;
  std::string t = *ct;
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t.rfind("text/plain", 0) == 0) return true;
  if (t.rfind("application/", 0) != 0) return false;
  const auto semi = t.find(';');
  const std::string sub = t.substr(12, semi == std::string::npos ? std::string::npos : semi - 12);
  return sub == "json" || (sub.size() > 5 && sub.compare(sub.size() - 5, 5, "+json") == 0);
}

// nullopt -> the caller answers 400 "Malformed Request Parameter" with an empty body (§0.2).
std::optional<nlohmann::json> json_params(ServiceContext& ctx, const http::Request& req) {
  if (!body_is_json(req) || req.body.empty()) return nlohmann::json::object();
  try {
    return parse_json_strict(req.body);
  } catch (const ParseError& e) {
    ctx.log.warn("{} {}: request body rejected: {}", req.method, printable_for_log(req.path), e.what());
    return std::nullopt;
  }
}

// Query string parameter (application/x-www-form-urlencoded style), percent-decoded.
std::optional<std::string> query_param(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(pos, end - pos);
    const size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      std::string raw = eq == std::string::npos ? "" : part.substr(eq + 1), out;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '+') out += ' ';
        else if (raw[i] == '%' && i + 2 < raw.size() &&
                 std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
          out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else out += raw[i];
      }
      return out;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

http::Response invalid(ServiceContext& ctx, const std::string& id, const CheckResult& r) {
  std::string details;
  for (const auto& e : r.errors) details += (details.empty() ? "" : "; ") + e;
  ctx.log.warn("Could not register agent '{}': {}", id, details);
  if (r.surrogate && !r.surrogate->ok()) {
    // Beyond upstream's fixed text: a refused SNP / Azure report names the failed check (docs/compatibility.md).
    const SurrogateOutcome& o = *r.surrogate;
    return http::json_envelope(
        400, {{"error", o.code()}, {"reason", o.reason}, {"failed_checks", o.failed_checks}},
        std::string(kInvalidData) + ": " + o.reason);
  }
  http::Response resp = http::json_envelope(400, nlohmann::json::object(), kInvalidData);
  if (!r.missing_issuer.empty()) {
    const std::string text =
        r.chain_field + " certificate issuer '" + r.missing_issuer + "' not found in tpm_cert_store";
    ctx.log.warn("Agent '{}' rejected: {}", id, text);
    // Header values cannot carry line breaks; DNs never should, but do not trust the certificate.
    std::string safe;
    for (char c : text) safe += (c == '\r' || c == '\n') ? ' ' : c;
    resp.headers.emplace_back(kErrorHeader, safe);
  }
  return resp;
}

}  // namespace

std::string pem_from_base64_der(const std::string& b64) {
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END CERTIFICATE-----\n";
  return pem;
}

nlohmann::json render_agent(const storage::RegistrarAgent& a) {
  auto text = [](const std::optional<std::string>& v) -> nlohmann::json {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json out = nlohmann::json::object();
  out["agent_id"] = a.agent_id;
  out["ek_tpm"] = text(a.ek_tpm);
  out["ekcert"] = text(a.ekcert);   // stored as base64 DER, rendered the same way (§2.6)
  out["aik_tpm"] = text(a.aik_tpm);
  if (!a.mtls_cert || a.mtls_cert->empty()) out["mtls_cert"] = nullptr;
  else if (*a.mtls_cert == "disabled") out["mtls_cert"] = "disabled";
  else out["mtls_cert"] = pem_from_base64_der(*a.mtls_cert);
  out["ip"] = text(a.ip);
  out["port"] = a.port ? nlohmann::json(*a.port) : nlohmann::json(nullptr);
  out["regcount"] = a.regcount;
  if (a.virtual_flag.value_or(false)) {
    nlohmann::json pk = nlohmann::json::object();
    if (a.provider_keys) {
      try {
        pk = nlohmann::json::parse(*a.provider_keys);
      } catch (const std::exception&) {
        pk = *a.provider_keys;
      }
    }
    out["provider_keys"] = pk;
  }
  return out;
}

http::Response handle_register(ServiceContext& ctx, const http::Request& req, const RouteParams& params) {
  auto body = json_params(ctx, req);
  if (!body) return http::empty_status(400, "Malformed Request Parameter");
  ParsedRegistration parsed = parse_registration(*body, params.has_agent_id ? params.agent_id : std::string{});
  const std::string& id = parsed.agent_id;
  if (!valid_agent_id(id)) {
    CheckResult r;
    r.errors.push_back("agent_id is not a valid agent ID (1-80 characters of [A-Za-z0-9_.-], no '..')");
    return invalid(ctx, printable_for_log(id), r);
  }
  if (parsed.ek_tpm_derived)
    ctx.log.info("Agent '{}' sent an EK certificate without ek_tpm: using the EK in the default template of its key", id);

  const RegistrationPolicy policy{ctx.settings.tpm_identity, ctx.settings.malformed_cert_action,
                                  ctx.settings.ek_cert_chain_check, &ctx.tpm_cert_store, ctx.surrogates};
  // Check, validate and commit under the agent's lock, so two registrations of one id cannot interleave.
  std::lock_guard lock(ctx.locks.for_agent(id));
  const std::optional<storage::RegistrarAgent> existing = ctx.store.find(id);
  const storage::RegistrarAgent* old = existing ? &*existing : nullptr;

  CheckResult identity = check_identity_immutable(parsed, old);
  if (identity.verdict == Verdict::identity_violation) {
    ctx.log.warn("SECURITY: rejected re-registration of agent '{}' with a different TPM identity: {}", id,
                 identity.errors.front());
    return http::json_envelope(403, nlohmann::json::object(), kIdentityForbidden);
  }
  CheckResult all;
  all.errors = parsed.errors;
  if (!all.errors.empty()) all.verdict = Verdict::invalid;
  for (CheckResult r : {verify_registration(parsed, old, policy), validate_registration(parsed, old, policy)}) {
    if (r.verdict != Verdict::ok) all.verdict = r.verdict;
    all.errors.insert(all.errors.end(), r.errors.begin(), r.errors.end());
    all.warnings.insert(all.warnings.end(), r.warnings.begin(), r.warnings.end());
    if (all.missing_issuer.empty()) {
      all.missing_issuer = r.missing_issuer;
      all.chain_field = r.chain_field;
    }
    if (r.surrogate) all.surrogate = r.surrogate;
  }
  for (const auto& w : all.warnings) ctx.log.warn("Agent '{}': {}", id, w);
  if (all.verdict != Verdict::ok) return invalid(ctx, id, all);

  BuiltRegistration built;
  try {
    built = build_registration(parsed, old, all.surrogate ? all.surrogate->evidence : nlohmann::json());
    if (all.surrogate)
      ctx.log.info("Agent '{}': EK-certificate surrogate verified ({})", id,
                   all.surrogate->evidence.contains("snp") ? "SEV-SNP report" : "Azure HCL report");
  } catch (const ParseError& e) {
    CheckResult r;
    r.errors.push_back(std::string("no activation challenge could be produced: ") + e.what());
    return invalid(ctx, id, r);
  }
  try {
    if (old) {
      if (!ctx.store.update(built.record)) throw storage::DuplicateAgent("record vanished during re-registration");
    } else {
      ctx.store.insert(built.record);
    }
  } catch (const storage::DuplicateAgent& e) {
    ctx.log.warn("SECURITY: registration of agent '{}' hit a concurrent change of the same id: {}", id, e.what());
    return http::json_envelope(403, nlohmann::json::object(),
                               "Agent with UUID '" + id +
                                   "' cannot be registered. This UUID is already in use or a concurrent "
                                   "registration is in progress.");
  }
  ctx.log.debug("Agent '{}' registered (regcount {}), challenge issued", id, built.record.regcount);
  return http::json_envelope(200, {{"blob", built.blob_base64}});
}

http::Response handle_activate(ServiceContext& ctx, const http::Request& req, const RouteParams& params) {
  auto body = json_params(ctx, req);
  if (!body) return http::empty_status(400, "Malformed Request Parameter");
  const std::string& id = params.agent_id;
  // Body wins over the query string (§0.3). A missing auth_tag is a dispatch error upstream.
  std::optional<std::string> tag;
  if (body->is_object() && body->contains("auth_tag")) {
    const auto& v = (*body)["auth_tag"];
    if (v.is_string()) tag = v.get<std::string>();
    else if (!v.is_null()) tag = v.dump();
  }
  if (!tag) tag = query_param(req.query, "auth_tag");
  if (!tag) return http::empty_status(400, "Bad Request");

  std::lock_guard lock(ctx.locks.for_agent(id));
  const auto agent = ctx.store.find(id);
  if (!agent) return http::json_envelope(404, nlohmann::json::object(), not_found_text(id));

  if (agent->key && auth_tag_matches(*agent->key, id, *tag)) {
    if (!ctx.store.set_active(id, true)) return http::json_envelope(404, nlohmann::json::object(), not_found_text(id));
    ctx.log.debug("Agent '{}' activated", id);
    return http::json_envelope(200);
  }
  // Project decision (§2.5): a wrong tag deletes only a record that is not active; an active agent is kept,
  // so an unauthenticated client on the plain port cannot delete registered agents.
  if (ctx.store.remove_if_inactive(id)) {
    ctx.log.warn("Auth tag for agent '{}' does not match: the inactive registration was deleted", id);
  } else {
    ctx.log.warn("SECURITY: wrong auth tag for active agent '{}': record kept (upstream would delete it)", id);
  }
  return http::json_envelope(400, nlohmann::json::object(),
                             "Auth tag '" + *tag + "' for agent '" + id +
                                 "' does not match expected value. The agent has been deleted from the database and "
                                 "will need to be restarted to reattempt registration");
}

http::Response handle_list(ServiceContext& ctx, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"uuids", ctx.store.list_ids()}});
}

http::Response handle_show(ServiceContext& ctx, const http::Request&, const RouteParams& params) {
  const auto agent = ctx.store.find(params.agent_id);
  if (!agent) return http::json_envelope(404, nlohmann::json::object(), not_found_text(params.agent_id));
  if (!agent->active)
    return http::json_envelope(404, nlohmann::json::object(),
                               "Agent with ID '" + params.agent_id + "' has not been activated");
  return http::json_envelope(200, render_agent(*agent));
}

http::Response handle_delete(ServiceContext& ctx, const http::Request&, const RouteParams& params) {
  std::lock_guard lock(ctx.locks.for_agent(params.agent_id));
  if (!ctx.store.remove(params.agent_id))
    return http::json_envelope(404, nlohmann::json::object(), not_found_text(params.agent_id));
  ctx.log.info("Agent '{}' deleted", params.agent_id);
  return http::json_envelope(200);
}

}  // namespace kl::registrar
