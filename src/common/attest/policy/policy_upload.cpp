#include "common/attest/policy/policy_upload.hpp"

#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/policy/dsse.hpp"
#include "common/attest/policy/exclude_regex.hpp"

namespace kl::policy {

nlohmann::json deserialize_runtime_policy(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw ParseError("Runtime policy is not valid JSON!");
  if (!dsse::is_envelope(doc)) return doc;
  if (!doc["payload"].is_string()) throw ParseError("Runtime policy payload is not a string");
  auto payload = dsse::decode_field(doc["payload"].get<std::string>());
  if (!payload) throw ParseError("Runtime policy payload does not decode");
  nlohmann::json inner = nlohmann::json::parse(payload->begin(), payload->end(), nullptr, false);
  if (inner.is_discarded()) throw ParseError("Runtime policy payload is not valid JSON!");
  return inner;
}

std::variant<AcceptedPolicy, PolicyUploadError> accept_runtime_policy(std::string_view text,
                                                                    const UploadOptions& options) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return PolicyUploadError{400, "Runtime policy is not valid JSON!"};
  const bool has_key = options.key_pem && !options.key_pem->empty();
  if (options.require_signatures && !has_key)
    return PolicyUploadError{401, "Runtime policy signature verification required but no key was given!"};
  const bool envelope = dsse::is_envelope(doc);
  if (options.require_signatures && !envelope) return PolicyUploadError{400, "Runtime policy is not signed!"};
  if (envelope && has_key) {
    bool ok = false;
    try {
      auto key = ima::load_public_key_pem(*options.key_pem);
      ok = EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC && dsse::verify_with_key(dsse::parse_envelope(doc), key.get());
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok) return PolicyUploadError{401, "Runtime policy failed DSSE signature verification!"};
  }
  nlohmann::json policy;
  try {
    policy = deserialize_runtime_policy(text);
  } catch (const ParseError& e) {
    return PolicyUploadError{400, e.what()};
  }
  if (auto err = schema_error(policy)) return PolicyUploadError{400, "Runtime policy is malformatted: " + *err};
  AcceptedPolicy out;
  try {
    out.policy = runtime_policy_from_json(policy);
  } catch (const ParseError& e) {
    return PolicyUploadError{400, std::string("Runtime policy is malformatted: ") + e.what()};
  }
  try {
    ExcludeRegex check(out.policy.excludes);
  } catch (const std::invalid_argument& e) {
    return PolicyUploadError{
        400, std::string(e.what()) + " Exclude list regex is misformatted. Please correct the issue and try again."};
  }
  out.stored_text = std::string(text);
  out.checksum = hex_encode(crypto::digest(crypto::HashAlg::sha256, as_bytes(text)));
  out.generator = out.policy.meta.generator;
  return out;
}

}  // namespace kl::policy
