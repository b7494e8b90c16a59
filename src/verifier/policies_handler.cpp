#include "verifier/policies_handler.hpp"

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/policy/policy_upload.hpp"
#include "common/service/http/json_response.hpp"
#include "verifier/request_checks.hpp"

namespace kl::verifier {

namespace {

using nlohmann::json;

http::Response envelope(int code, const std::string& status, const json& results = json::object()) {
  return http::json_envelope(code, results, status);
}

// Body of POST/PUT: a JSON object (duplicate keys refused). nullopt + response on error.
std::optional<json> parse_body(const http::Request& req, http::Response& error) {
  if (req.body.empty()) {
    error = envelope(400, "Expected non zero content length");
    return std::nullopt;
  }
  try {
    json j = parse_json_strict(req.body);
    if (!j.is_object()) throw ParseError("request body is not a JSON object");
    return j;
  } catch (const ParseError& e) {
    error = envelope(400, std::string("Exception error: ") + e.what());
    return std::nullopt;
  }
}

std::optional<std::string> optional_string(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_string()) throw ParseError(std::string("'") + key + "' must be a string");
  return body[key].get<std::string>();
}

bool valid_policy_name(const std::string& name) {
  if (name.empty() || name.size() > 255) return false;
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

http::Response store_runtime(ServiceContext& ctx, const http::Request& req, const RouteParams& p, bool update) {
  if (!valid_policy_name(p.id)) return envelope(400, "Runtime policy name is not valid");
  http::Response error;
  auto body = parse_body(req, error);
  if (!body) return error;
  std::variant<storage::RuntimePolicy, PolicyError> row;
  try {
    const auto policy = optional_string(*body, "runtime_policy");
    if (!policy) return envelope(400, "Runtime policy is required");
    row = runtime_policy_from_upload(p.id, *policy, optional_string(*body, "runtime_policy_key"),
                                     optional_string(*body, "tpm_policy"), ctx.settings);
  } catch (const ParseError& e) {
    return envelope(400, std::string("Exception error: ") + e.what());
  }
  if (auto* err = std::get_if<PolicyError>(&row)) return envelope(err->code, err->message);
  const auto& policy = std::get<storage::RuntimePolicy>(row);
  if (update) {
    if (!ctx.store.update_runtime_policy(policy)) return envelope(404, "Runtime policy " + p.id + " not found");
    if (ctx.scheduler) ctx.scheduler->policy_changed(AgentScheduler::PolicyKind::runtime, p.id);
  } else {
    try {
      ctx.store.insert_runtime_policy(policy);
    } catch (const storage::DuplicatePolicy&) {
      return envelope(409, "Runtime policy with name " + p.id + " already exists");
    }
  }
  return envelope(201, "Created");
}

http::Response store_mb(ServiceContext& ctx, const http::Request& req, const RouteParams& p, bool update) {
  if (!valid_policy_name(p.id)) return envelope(400, "Measured boot policy name is not valid");
  http::Response error;
  auto body = parse_body(req, error);
  if (!body) return error;
  storage::MbPolicy row;
  row.name = p.id;
  try {
    row.mb_policy = optional_string(*body, "mb_policy");
  } catch (const ParseError& e) {
    return envelope(400, std::string("Exception error: ") + e.what());
  }
  if (!row.mb_policy) return envelope(400, "Measured boot policy is required");
  if (auto bad = check_mb_policy_text(*row.mb_policy)) return envelope(400, *bad);
  if (update) {
    if (!ctx.store.update_mb_policy(row)) return envelope(404, "Measured boot policy " + p.id + " not found");
    if (ctx.scheduler) ctx.scheduler->policy_changed(AgentScheduler::PolicyKind::measured_boot, p.id);
  } else {
    try {
      ctx.store.insert_mb_policy(row);
    } catch (const storage::DuplicatePolicy&) {
      return envelope(409, "Measured boot policy with name " + p.id + " already exists");
    }
  }
  return envelope(201, "Created");
}

}  // namespace

std::variant<storage::RuntimePolicy, PolicyError> runtime_policy_from_upload(
    const std::string& name, const std::string& policy_b64, const std::optional<std::string>& key_b64,
    const std::optional<std::string>& tpm_policy, const VerifierSettings& settings) {
  const auto text = base64_decode_ignoring_whitespace(policy_b64);
  if (!text) return PolicyError{400, "Exception error: runtime_policy is not valid base64"};
  policy::UploadOptions opts;
  opts.require_signatures = settings.require_allow_list_signatures;
  if (key_b64 && !key_b64->empty()) {
    const auto key = base64_decode_ignoring_whitespace(*key_b64);
    if (!key) return PolicyError{400, "Exception error: runtime_policy_key is not valid base64"};
    opts.key_pem = as_string(*key);
  }
  const auto accepted = policy::accept_runtime_policy(as_string(*text), opts);
  if (const auto* err = std::get_if<policy::PolicyUploadError>(&accepted)) return PolicyError{err->code, err->message};
  const auto& ok = std::get<policy::AcceptedPolicy>(accepted);
  storage::RuntimePolicy row;
  row.name = name;
  row.ima_policy = ok.stored_text;
  row.checksum = ok.checksum;
  row.generator = static_cast<int>(ok.generator);
  row.tpm_policy = tpm_policy;
  return row;
}

storage::RuntimePolicy empty_runtime_policy(const std::string& name) {
  storage::RuntimePolicy row;
  row.name = name;
  row.generator = kEmptyAllowListGenerator;
  return row;
}

std::optional<std::string> check_mb_policy_text(const std::string& text) {
  try {
    (void)parse_json_strict(text);
    return std::nullopt;
  } catch (const ParseError& e) {
    return std::string("Exception error: mb_policy is not valid JSON: ") + e.what();
  }
}

http::Response handle_list_runtime(ServiceContext& ctx, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"runtimepolicy names", ctx.store.list_runtime_policy_names()}});
}

http::Response handle_show_runtime(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  const auto row = ctx.store.find_runtime_policy(p.id);
  if (!row) return envelope(404, "Runtime policy " + p.id + " not found");
  // "tmp_policy" (sic) is upstream's key and is always null.
  return http::json_envelope(200, {{"name", row->name},
                                   {"tmp_policy", nullptr},
                                   {"runtime_policy", row->ima_policy ? json(*row->ima_policy) : json(nullptr)}});
}

http::Response handle_create_runtime(ServiceContext& ctx, const http::Request& req, const RouteParams& p) {
  return store_runtime(ctx, req, p, false);
}

http::Response handle_update_runtime(ServiceContext& ctx, const http::Request& req, const RouteParams& p) {
  return store_runtime(ctx, req, p, true);
}

http::Response handle_delete_runtime(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  try {
    if (!ctx.store.remove_runtime_policy(p.id)) return envelope(404, "Runtime policy " + p.id + " not found");
    if (ctx.scheduler) ctx.scheduler->policy_changed(AgentScheduler::PolicyKind::runtime, p.id);
  } catch (const storage::PolicyInUse&) {
    return envelope(409, "Runtime policy " + p.id + " is in use by an agent");
  }
  return http::json_envelope(200);
}

http::Response handle_list_mb(ServiceContext& ctx, const http::Request&, const RouteParams&) {
  return http::json_envelope(200, {{"mbpolicy names", ctx.store.list_mb_policy_names()}});
}

http::Response handle_show_mb(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  const auto row = ctx.store.find_mb_policy(p.id);
  if (!row) return envelope(404, "Measured boot policy " + p.id + " not found");
  return http::json_envelope(200, {{"name", row->name}, {"mb_policy", row->mb_policy ? json(*row->mb_policy) : json(nullptr)}});
}

http::Response handle_create_mb(ServiceContext& ctx, const http::Request& req, const RouteParams& p) {
  return store_mb(ctx, req, p, false);
}

http::Response handle_update_mb(ServiceContext& ctx, const http::Request& req, const RouteParams& p) {
  return store_mb(ctx, req, p, true);
}

http::Response handle_delete_mb(ServiceContext& ctx, const http::Request&, const RouteParams& p) {
  try {
    if (!ctx.store.remove_mb_policy(p.id)) return envelope(404, "Measured boot policy " + p.id + " not found");
    if (ctx.scheduler) ctx.scheduler->policy_changed(AgentScheduler::PolicyKind::measured_boot, p.id);
  } catch (const storage::PolicyInUse&) {
    return envelope(409, "Measured boot policy " + p.id + " is in use by an agent");
  }
  return http::json_envelope(200);
}

}  // namespace kl::verifier
