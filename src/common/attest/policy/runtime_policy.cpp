#include "common/attest/policy/runtime_policy.hpp"

#include "common/attest/ima/keyring.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::policy {

namespace {
using json = nlohmann::json;

bool lower_hex_40_128(const std::string& s) {
  if (s.size() < 40 || s.size() > 128) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> not_type(const json& j, const char* type) {
  return j.dump() + " is not of type '" + type + "'";
}

bool is_int(const json& j) { return j.is_number_integer(); }

std::optional<std::string> check_digests_object(const json& j) {
  if (!j.is_object()) return not_type(j, "object");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_array()) return not_type(v, "array");
    if (v.empty()) return std::string("[] should be non-empty");
    for (const auto& h : v) {
      if (!h.is_string()) return not_type(h, "string");
      if (!lower_hex_40_128(h.get<std::string>()))
        return h.dump() + " does not match '^[0-9a-f]{40,128}$'";
    }
  }
  return std::nullopt;
}

DigestMap read_digest_map(const json& j, const char* key) {
  DigestMap out;
  if (!j.is_object()) throw ParseError(std::string("runtime policy: '") + key + "' must be an object");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_array()) throw ParseError(std::string("runtime policy: '") + key + "' values must be lists");
    auto& list = out[k];
    list.reserve(v.size());
    for (const auto& h : v) {
      if (!h.is_string()) throw ParseError(std::string("runtime policy: '") + key + "' values must be strings");
      list.push_back(h.get<std::string>());
    }
  }
  return out;
}

std::vector<std::string> read_string_list(const json& j, const char* key) {
  if (!j.is_array()) throw ParseError(std::string("runtime policy: '") + key + "' must be a list");
  std::vector<std::string> out;
  for (const auto& s : j) {
    if (!s.is_string()) throw ParseError(std::string("runtime policy: '") + key + "' must hold strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string py_str(const std::string& s) { return json(s).dump(-1, ' ', true); }

void dump_map(std::string& out, const DigestMap& m) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ", ";
    first = false;
    out += py_str(k);
    out += ": [";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      out += py_str(v[i]);
    }
    out += ']';
  }
  out += '}';
}
}  // namespace

RuntimePolicy empty_runtime_policy() { return RuntimePolicy{}; }

std::optional<std::string> schema_error(const json& p) {
  if (!p.is_object()) return not_type(p, "object");
  for (const char* k : {"meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf", "verification-keys"})
    if (!p.contains(k)) return std::string("'") + k + "' is a required property";
  const auto& meta = p["meta"];
  if (!meta.is_object()) return not_type(meta, "object");
  for (const char* k : {"version", "generator"})
    if (!meta.contains(k)) return std::string("'") + k + "' is a required property";
  if (!is_int(meta["version"])) return not_type(meta["version"], "integer");
  if (meta["version"].get<std::int64_t>() < 0) return meta["version"].dump() + " is less than the minimum of 0";
  if (!is_int(meta["generator"])) return not_type(meta["generator"], "integer");
  if (meta["generator"].get<std::int64_t>() < 0) return meta["generator"].dump() + " is less than the minimum of 0";
  if (meta["generator"].get<std::int64_t>() > 3) return meta["generator"].dump() + " is greater than the maximum of 3";
  if (meta.contains("timestamp") && !meta["timestamp"].is_string()) return not_type(meta["timestamp"], "string");
  if (!is_int(p["release"])) return not_type(p["release"], "integer");
  if (p["release"].get<std::int64_t>() < 0) return p["release"].dump() + " is less than the minimum of 0";
  if (auto e = check_digests_object(p["digests"])) return e;
  if (!p["excludes"].is_array()) return not_type(p["excludes"], "array");
  for (const auto& s : p["excludes"])
    if (!s.is_string()) return not_type(s, "string");
  if (auto e = check_digests_object(p["keyrings"])) return e;
  const auto& ima = p["ima"];
  if (!ima.is_object()) return not_type(ima, "object");
  for (const char* k : {"ignored_keyrings", "log_hash_alg", "dm_policy"})
    if (!ima.contains(k)) return std::string("'") + k + "' is a required property";
  if (!ima["ignored_keyrings"].is_array()) return not_type(ima["ignored_keyrings"], "array");
  for (const auto& s : ima["ignored_keyrings"])
    if (!s.is_string()) return not_type(s, "string");
  if (!ima["log_hash_alg"].is_string()) return not_type(ima["log_hash_alg"], "string");
  {
    const auto alg = ima["log_hash_alg"].get<std::string>();
    if (alg != "sha1" && alg != "sha256" && alg != "sha384" && alg != "sha512")
      return ima["log_hash_alg"].dump() + " is not one of ['sha1', 'sha256', 'sha384', 'sha512']";
  }
  if (!ima["dm_policy"].is_null()) return not_type(ima["dm_policy"], "null");
  if (auto e = check_digests_object(p["ima-buf"])) return e;
  if (!p["verification-keys"].is_string()) return not_type(p["verification-keys"], "string");
  const auto vk = p["verification-keys"].get<std::string>();
  if (!vk.empty()) {
    json k = json::parse(vk, nullptr, false);
    if (k.is_discarded()) return std::string("verification-keys is not valid JSON");
    if (!ima::ImaKeyring::valid_keyring_json(k)) return std::string("verification-keys is not a valid IMA keyring");
  }
  return std::nullopt;
}

RuntimePolicy runtime_policy_from_json(const json& j) {
  if (!j.is_object()) throw ParseError("runtime policy: not a JSON object");
  RuntimePolicy p;
  try {
    if (j.contains("meta")) {
      const auto& m = j["meta"];
      if (!m.is_object()) throw ParseError("runtime policy: 'meta' must be an object");
      if (m.contains("version")) p.meta.version = m["version"].get<std::int64_t>();
      p.meta.generator = m.contains("generator") ? m["generator"].get<std::int64_t>()
                                                 : static_cast<std::int64_t>(Generator::Unknown);
      if (m.contains("timestamp") && m["timestamp"].is_string()) p.meta.timestamp = m["timestamp"].get<std::string>();
    }
    if (j.contains("release")) p.release = j["release"].get<std::int64_t>();
    if (j.contains("digests")) p.digests = read_digest_map(j["digests"], "digests");
    if (j.contains("excludes")) p.excludes = read_string_list(j["excludes"], "excludes");
    if (j.contains("keyrings")) p.keyrings = read_digest_map(j["keyrings"], "keyrings");
    if (j.contains("ima")) {
      const auto& ima = j["ima"];
      if (!ima.is_object()) throw ParseError("runtime policy: 'ima' must be an object");
      if (ima.contains("ignored_keyrings"))
        p.ima.ignored_keyrings = read_string_list(ima["ignored_keyrings"], "ignored_keyrings");
      if (ima.contains("log_hash_alg")) p.ima.log_hash_alg = ima["log_hash_alg"].get<std::string>();
      if (ima.contains("dm_policy")) p.ima.dm_policy = ima["dm_policy"];
    }
    if (j.contains("ima-buf")) p.ima_buf = read_digest_map(j["ima-buf"], "ima-buf");
    if (j.contains("verification-keys")) p.verification_keys = j["verification-keys"].get<std::string>();
  } catch (const json::exception& e) {
    throw ParseError(std::string("runtime policy: ") + e.what());
  }
  return p;
}

json to_json(const RuntimePolicy& p) {
  json meta = {{"version", p.meta.version}, {"generator", p.meta.generator}};
  if (p.meta.timestamp) meta["timestamp"] = *p.meta.timestamp;
  auto map = [](const DigestMap& m) {
    json o = json::object();
    for (const auto& [k, v] : m) o[k] = v;
    return o;
  };
  return {{"meta", meta},
          {"release", p.release},
          {"digests", map(p.digests)},
          {"excludes", p.excludes},
          {"keyrings", map(p.keyrings)},
          {"ima", {{"ignored_keyrings", p.ima.ignored_keyrings}, {"log_hash_alg", p.ima.log_hash_alg},
                   {"dm_policy", p.ima.dm_policy}}},
          {"ima-buf", map(p.ima_buf)},
          {"verification-keys", p.verification_keys}};
}

std::string to_text(const RuntimePolicy& p) {
  std::string out = "{\"meta\": {\"version\": " + std::to_string(p.meta.version) +
                    ", \"generator\": " + std::to_string(p.meta.generator);
  if (p.meta.timestamp) out += ", \"timestamp\": " + py_str(*p.meta.timestamp);
  out += "}, \"release\": " + std::to_string(p.release) + ", \"digests\": ";
  dump_map(out, p.digests);
  out += ", \"excludes\": [";
  for (std::size_t i = 0; i < p.excludes.size(); ++i) {
    if (i) out += ", ";
    out += py_str(p.excludes[i]);
  }
  out += "], \"keyrings\": ";
  dump_map(out, p.keyrings);
  out += ", \"ima\": {\"ignored_keyrings\": [";
  for (std::size_t i = 0; i < p.ima.ignored_keyrings.size(); ++i) {
    if (i) out += ", ";
    out += py_str(p.ima.ignored_keyrings[i]);
  }
  out += "], \"log_hash_alg\": " + py_str(p.ima.log_hash_alg) + ", \"dm_policy\": ";
  out += p.ima.dm_policy.is_null() ? "null" : p.ima.dm_policy.dump();
  out += "}, \"ima-buf\": ";
  dump_map(out, p.ima_buf);
  out += ", \"verification-keys\": " + py_str(p.verification_keys) + "}";
  return out;
}

}  // namespace kl::policy
