#include "verifier/agents_handler.hpp"

#include <cmath>
#include <mutex>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/quote/tpm_policy.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/json_response.hpp"
#include "verifier/request_checks.hpp"
#include "verifier/request_checks.hpp"
#include "verifier/operational_state.hpp"
#include "verifier/policies_handler.hpp"
#include "verifier/routes.hpp"
#include "verifier/version_handler.hpp"

namespace kl::verifier {

namespace {

using nlohmann::json;

http::Response envelope(int code, const std::string& status, const json& results = json::object()) {
  return http::json_envelope(code, results, status);
}

// Upstream raises KeyError for a missing key; the handler answers "Exception error: 'key'".
struct MissingKey {
  std::string key;
};

const json& require(const json& body, const char* key) {
  if (!body.contains(key)) throw MissingKey{key};
  return body[key];
}

std::string require_string(const json& body, const char* key, bool allow_null = false) {
  const json& v = require(body, key);
  if (v.is_null() && allow_null) return {};
  if (!v.is_string()) throw ParseError(std::string("'") + key + "' must be a string");
  return v.get<std::string>();
}

std::optional<std::string> optional_string(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_string()) throw ParseError(std::string("'") + key + "' must be a string");
  return body[key].get<std::string>();
}

std::vector<std::string> require_string_list(const json& body, const char* key) {
  const json& v = require(body, key);
  if (!v.is_array()) throw ParseError(std::string("'") + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) throw ParseError(std::string("'") + key + "' must be a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

int port_value(const json& v, const char* key) {
  long long p = -1;
  if (v.is_number_integer()) {
    p = v.get<long long>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
      throw ParseError(std::string("invalid literal for int() in '") + key + "'");
    p = std::stoll(s);
  } else {
    throw ParseError(std::string("'") + key + "' must be a port number");
  }
  if (p < 0 || p > 65535) throw ParseError(std::string("'") + key + "' is not a valid port number");
  return static_cast<int>(p);
}

bool is_supported_agent_version(const std::string& v) {
  for (const char* s : {"1.0", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"})
    if (v == s) return true;
  return false;
}

std::optional<std::pair<std::string, std::string>> query_value(const http::Request& req, const std::string& key) {
  for (auto& kv : parse_query(req.query))
    if (kv.first == key) return kv;
  return std::nullopt;
}

const char* const kNoRow = "Exception error: No row was found when one was required";

}  // namespace

std::string encode_json_string_column(const std::string& text) { return json(text).dump(); }

std::string decode_json_string_column(const std::optional<std::string>& column) {
  if (!column) return {};
  try {
    const json j = json::parse(*column);
    if (j.is_string()) return j.get<std::string>();
    return j.dump();
  } catch (const std::exception&) {
    return *column;   // a plain text column written by another tool
  }
}

json decode_json_column(const std::optional<std::string>& column) {
  if (!column) return nullptr;
  try {
    return json::parse(*column);
  } catch (const std::exception&) {
    return nullptr;
  }
}

json render_agent_status(ServiceContext& ctx, const storage::VerifierAgent& a) {
  int has_mb = 0, has_rt = 0;
  if (a.mb_policy_id)
    if (auto mb = ctx.store.find_mb_policy_by_id(*a.mb_policy_id); mb && mb->mb_policy) has_mb = 1;
  if (a.ima_policy_id)
    if (auto rt = ctx.store.find_runtime_policy_by_id(*a.ima_policy_id);
        rt && rt->generator && *rt->generator > kEmptyAllowListGenerator)
      has_rt = 1;
  auto opt = [](const auto& o) -> json { return o ? json(*o) : json(nullptr); };
  const int state = a.operational_state.value_or(0);
  const std::string period = std::to_string(static_cast<long long>(ctx.settings.quote_interval)) + "s";
  return json{
      {"operational_state", state},
      {"v", opt(a.v)},
      {"ip", opt(a.ip)},
      {"port", opt(a.port)},
      {"tpm_policy", a.tpm_policy ? json(decode_json_string_column(a.tpm_policy)) : json(nullptr)},
      {"meta_data", a.meta_data ? json(decode_json_string_column(a.meta_data)) : json(nullptr)},
      {"has_mb_refstate", has_mb},
      {"has_runtime_policy", has_rt},
      {"accept_tpm_hash_algs", decode_json_column(a.accept_tpm_hash_algs)},
      {"accept_tpm_encryption_algs", decode_json_column(a.accept_tpm_encryption_algs)},
      {"accept_tpm_signing_algs", decode_json_column(a.accept_tpm_signing_algs)},
      {"hash_alg", opt(a.hash_alg)},
      {"enc_alg", opt(a.enc_alg)},
      {"sign_alg", opt(a.sign_alg)},
      {"verifier_id", opt(a.verifier_id)},
      {"verifier_ip", opt(a.verifier_ip)},
      {"verifier_port", opt(a.verifier_port)},
      {"severity_level", opt(a.severity_level)},
      {"last_event_id", opt(a.last_event_id)},
      {"attestation_count", a.attestation_count.value_or(0)},
      {"last_received_quote", a.last_received_quote.value_or(0)},
      {"last_successful_attestation", a.last_successful_attestation.value_or(0)},
      {"attestation_status", std::string(attestation_status(state))},
      {"attestation_period", period},
      // Upstream reports its push-monitor deadline, 5 x quote_interval (truncated to whole seconds), in every mode.
      {"maximum_attestation_interval",
       std::to_string(static_cast<long long>(ctx.settings.quote_interval * 5.0)) + "s"},
  };
}

http::Response handle_add_agent(ServiceContext& ctx, const http::Request& req, const RouteParams& p) {
  const std::string& agent_id = p.id;
  if (!valid_agent_id(agent_id)) return envelope(400, "agent_id not not valid");   // (sic) upstream
  if (req.body.empty()) return envelope(400, "Expected non zero content length");

  storage::VerifierAgent row;
  std::optional<storage::RuntimePolicy> new_runtime;
  std::optional<storage::MbPolicy> new_mb;
  std::unique_lock lock(ctx.locks.for_agent(agent_id));
  try {
    const json body = parse_json_strict(req.body);
    if (!body.is_object()) throw ParseError("request body is not a JSON object");
    if (ctx.store.find_agent(agent_id))
      return envelope(409, "Agent of uuid " + agent_id + " already exists. Please use delete or update.");

    row.agent_id = agent_id;
    row.v = optional_string(body, "v");
    if (row.v && !row.v->empty()) {
      const auto v = base64_decode(*row.v);
      if (!v || v->empty()) throw ParseError("'v' is not valid base64");
    } else {
      row.v.reset();
    }
    row.ip = require_string(body, "cloudagent_ip");
    if (row.ip->empty()) throw ParseError("'cloudagent_ip' is empty");
    row.port = port_value(require(body, "cloudagent_port"), "cloudagent_port");

    // tpm_policy: a JSON string holding the PCR allowlist and the mask.
    const std::string tpm_policy = require_string(body, "tpm_policy");
    (void)quote::parse_tpm_policy_text(tpm_policy);
    row.tpm_policy = encode_json_string_column(tpm_policy);

    const std::string metadata = require_string(body, "metadata");
    try {
      (void)parse_json_strict(metadata);
    } catch (const ParseError& e) {
      throw ParseError(std::string("'metadata' is not JSON: ") + e.what());
    }
    row.meta_data = encode_json_string_column(metadata);
    row.ima_sign_verification_keys = require_string(body, "ima_sign_verification_keys", true);
    row.revocation_key = require_string(body, "revocation_key", true);
    row.accept_tpm_hash_algs = json(require_string_list(body, "accept_tpm_hash_algs")).dump();
    row.accept_tpm_encryption_algs = json(require_string_list(body, "accept_tpm_encryption_algs")).dump();
    row.accept_tpm_signing_algs = json(require_string_list(body, "accept_tpm_signing_algs")).dump();

    const std::string ak_tpm = require_string(body, "ak_tpm");
    const auto ak = base64_decode(ak_tpm);
    if (!ak) throw ParseError("'ak_tpm' is not valid base64");
    (void)tpm::public_key(tpm::parse_tpm2b_public(*ak));   // must be a usable RSA/EC key
    row.ak_tpm = ak_tpm;

    const auto mtls = optional_string(body, "mtls_cert");
    row.mtls_cert = mtls;
    const auto supported = optional_string(body, "supported_version");
    row.supported_version = supported && is_supported_agent_version(*supported) ? *supported : current_api_version();

    row.verifier_id = ctx.settings.uuid;
    row.verifier_ip = optional_string(body, "verifier_ip").value_or(ctx.settings.ip);
    if (body.contains("verifier_port") && !body["verifier_port"].is_null())
      row.verifier_port = port_value(body["verifier_port"], "verifier_port");
    else
      row.verifier_port = ctx.settings.port;
    row.operational_state = static_cast<int>(State::start);
    row.attestation_count = 0;
    row.next_ima_ml_entry = 0;
    row.boottime = 0;
    row.last_received_quote = 0;
    row.last_successful_attestation = 0;
    row.tpm_clockinfo = std::nullopt;

    if (ctx.settings.enable_agent_mtls && *row.supported_version != "1.0" &&
        (!row.mtls_cert || *row.mtls_cert == "disabled"))
      return envelope(400, "mTLS certificate for agent is required!");

    // Runtime policy (§3.2 name rules). The key must be present; null fails as upstream's b64decode(None).
    const json& rp = require(body, "runtime_policy");
    if (!rp.is_string()) throw ParseError("argument should be a bytes-like object or ASCII string, not 'NoneType'");
    const std::string runtime_policy = rp.get<std::string>();
    const auto rp_name = optional_string(body, "runtime_policy_name");
    const auto rp_key = optional_string(body, "runtime_policy_key");
    if (rp_name && !rp_name->empty()) {
      const auto existing = ctx.store.find_runtime_policy(*rp_name);
      if (!runtime_policy.empty()) {
        if (existing)
          return envelope(409, "IMA policy with name " + *rp_name +
                                   " already exists. Please use a different name or delete the allowlist from the verifier.");
        auto r = runtime_policy_from_upload(*rp_name, runtime_policy, rp_key, tpm_policy, ctx.settings);
        if (auto* e = std::get_if<PolicyError>(&r)) return envelope(e->code, e->message);
        new_runtime = std::get<storage::RuntimePolicy>(r);
      } else {
        if (!existing) return envelope(404, "Could not find IMA policy with name " + *rp_name + "!");
        row.ima_policy_id = existing->id;
      }
    } else if (!runtime_policy.empty()) {
      auto r = runtime_policy_from_upload(agent_id, runtime_policy, rp_key, tpm_policy, ctx.settings);
      if (auto* e = std::get_if<PolicyError>(&r)) return envelope(e->code, e->message);
      new_runtime = std::get<storage::RuntimePolicy>(r);
    } else {
      new_runtime = empty_runtime_policy(agent_id);
    }

    // Measured-boot policy: both keys must be present, values may be null.
    const json& mbp = require(body, "mb_policy");
    const json& mbn = require(body, "mb_policy_name");
    if (!mbp.is_null() && !mbp.is_string()) throw ParseError("'mb_policy' must be a string or null");
    if (!mbn.is_null() && !mbn.is_string()) throw ParseError("'mb_policy_name' must be a string or null");
    const std::optional<std::string> mb_text =
        mbp.is_string() && !mbp.get<std::string>().empty() ? std::optional(mbp.get<std::string>()) : std::nullopt;
    const std::optional<std::string> mb_name =
        mbn.is_string() && !mbn.get<std::string>().empty() ? std::optional(mbn.get<std::string>()) : std::nullopt;
    if (mb_text)
      if (auto bad = check_mb_policy_text(*mb_text)) return envelope(400, *bad);
    if (mb_name) {
      const auto existing = ctx.store.find_mb_policy(*mb_name);
      if (mb_text) {
        if (existing)
          return envelope(409, "mb_policy with name " + *mb_name +
                                   " already exists. Please use a different name or delete the mb_policy from the verifier.");
        new_mb = storage::MbPolicy{0, *mb_name, mb_text};
      } else {
        if (!existing) return envelope(404, "Could not find mb_policy with name " + *mb_name + "!");
        row.mb_policy_id = existing->id;
      }
    } else {
      const auto existing = ctx.store.find_mb_policy(agent_id);
      if (existing && mb_text)
        return envelope(409, "mb_policy with name " + agent_id +
                                 " already exists. You can delete the mb_policy from the verifier.");
      if (existing)
        row.mb_policy_id = existing->id;
      else
        new_mb = storage::MbPolicy{0, agent_id, mb_text};
    }
  } catch (const MissingKey& k) {
    return envelope(400, "Exception error: '" + k.key + "'");
  } catch (const ParseError& e) {
    return envelope(400, std::string("Exception error: ") + e.what());
  }

  // The registrar is the authority on the AK and the agent's mTLS certificate.
  if (ctx.registrar) {
    const auto found = ctx.registrar(agent_id);
    using S = RegistrarLookup::Status;
    if (found.status == S::not_found)
      return envelope(400, "Agent " + agent_id + " is not registered and active at the registrar: " + found.detail);
    if (found.status != S::ok) return envelope(503, "Could not query the registrar: " + found.detail);
    if (found.info.aik_tpm != *row.ak_tpm)
      return envelope(400, "Exception error: ak_tpm of agent " + agent_id + " differs from the AK held by the registrar");
    if (found.info.mtls_cert) row.mtls_cert = found.info.mtls_cert;
  }

  try {
    row = ctx.store.add_agent(row, new_runtime, new_mb);
  } catch (const storage::DuplicateAgent&) {
    return envelope(409, "Agent of uuid " + agent_id + " already exists. Please use delete or update.");
  } catch (const storage::DuplicatePolicy& e) {
    return envelope(409, std::string("Exception error: ") + e.what());
  }
  lock.unlock();
  ctx.log.info("Agent {} added (polling {}:{})", agent_id, row.ip.value_or(""), row.port.value_or(0));
  if (ctx.scheduler) ctx.scheduler->start(row);
  return http::json_envelope(200);
}

http::Response handle_show_agent(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  const auto agent = ctx.store.find_agent(p.id);
  if (!agent) return envelope(404, "agent id not found");
  return http::json_envelope(200, render_agent_status(ctx, *agent));
}

http::Response handle_list_agents(ServiceContext& ctx, const http::Request& req, const RouteParams&) {
  std::optional<std::string> verifier;
  // Upstream filters only on a non-empty value: the tenant's cvlist always sends "?verifier=".
  if (auto v = query_value(req, "verifier"); v && !v->second.empty()) verifier = v->second;
  const bool bulk = query_value(req, "bulk").has_value() &&
                    query_value(req, "bulk")->second != "false" && query_value(req, "bulk")->second != "False";
  if (bulk) {
    json out = json::object();
    for (const auto& a : ctx.store.load_agents(verifier)) out[a.agent_id] = render_agent_status(ctx, a);
    return http::json_envelope(200, out);
  }
  // Each element is a one-element list (upstream serialises DB rows), unlike the registrar's flat list.
  json uuids = json::array();
  for (const auto& id : ctx.store.list_agent_ids(verifier)) uuids.push_back(json::array({id}));
  return http::json_envelope(200, {{"uuids", uuids}});
}

http::Response handle_delete_agent(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  std::unique_lock lock(ctx.locks.for_agent(p.id));
  const auto agent = ctx.store.find_agent(p.id);
  if (!agent) return envelope(404, "agent id not found");
  if (agent->verifier_id.value_or(ctx.settings.uuid) != ctx.settings.uuid)
    return envelope(404, "agent id associated to this verifier");   // (sic) upstream
  const int state = agent->operational_state.value_or(0);
  if (state == static_cast<int>(State::terminated)) return envelope(202, "Accepted");
  if (ctx.scheduler) {
    const RemoveResult r = ctx.scheduler->remove(p.id);
    if (r == RemoveResult::pending) return envelope(202, "Accepted");
    return http::json_envelope(200);
  }
  ctx.store.remove_agent(p.id);
  return http::json_envelope(200);
}

http::Response handle_agent_put(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  if (p.action != "reactivate" && p.action != "stop") return envelope(400, "uri not supported");
  std::unique_lock lock(ctx.locks.for_agent(p.id));
  auto agent = ctx.store.find_agent(p.id);
  if (!agent || agent->verifier_id.value_or(ctx.settings.uuid) != ctx.settings.uuid) return envelope(400, kNoRow);
  if (p.action == "reactivate") {
    agent->operational_state = static_cast<int>(State::start);
    if (ctx.scheduler) {
      lock.unlock();
      ctx.scheduler->start(*agent);
    } else {
      ctx.store.update_agent(*agent);
    }
    ctx.log.info("Agent {} reactivated", p.id);
    return http::json_envelope(200);
  }
  if (!ctx.scheduler || !ctx.scheduler->stop(p.id, static_cast<int>(State::tenant_failed))) {
    agent->operational_state = static_cast<int>(State::tenant_failed);
    ctx.store.update_agent(*agent);
  }
  ctx.log.info("Agent {} stopped by the tenant", p.id);
  return http::json_envelope(200);
}

}  // namespace kl::verifier
