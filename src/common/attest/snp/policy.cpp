#include "common/attest/snp/policy.hpp"

#include <algorithm>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/attest/parse_error.hpp"

namespace kl::snp {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw ParseError("SNP policy: \"" + key + "\" " + why);
}

bool get_bool(const json& v, const std::string& key) {
  if (!v.is_boolean()) bad(key, "must be true or false");
  return v.get<bool>();
}

std::uint64_t get_uint(const json& v, const std::string& key, std::uint64_t max) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) bad(key, "must be a non-negative integer");
  if (v.is_number_integer() && v.get<std::int64_t>() < 0) bad(key, "must be a non-negative integer");
  auto u = v.get<std::uint64_t>();
  if (u > max) bad(key, "must be at most " + std::to_string(max));
  return u;
}

std::vector<Bytes> get_hex_list(const json& v, const std::string& key, std::size_t len) {
  if (!v.is_array()) bad(key, "must be a list of hex strings");
  std::vector<Bytes> out;
  for (const auto& item : v) {
    if (!item.is_string()) bad(key, "must be a list of hex strings");
    auto b = hex_decode(item.get<std::string>());
    if (!b) bad(key, "has an entry that is not hex: " + item.get<std::string>());
    if (b->size() != len)
      bad(key, "entries must be " + std::to_string(len) + " bytes (" + std::to_string(2 * len) + " hex digits)");
    out.push_back(std::move(*b));
  }
  return out;
}

// "1.52.4" / "1.51" -> numbers; at most `parts` components, each 0..255.
std::vector<std::uint8_t> dotted(const json& v, const std::string& key, std::size_t parts) {
  if (!v.is_string()) bad(key, "must be a string like \"1.52\"");
  std::string s = v.get<std::string>();
  std::vector<std::uint8_t> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t dot = s.find('.', pos);
    std::string part = s.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), ::isdigit))
      bad(key, "is not a dotted version: " + s);
    int n = std::stoi(part);
    if (n > 255) bad(key, "component out of range: " + s);
    out.push_back(static_cast<std::uint8_t>(n));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (out.size() < 2 || out.size() > parts) bad(key, "has the wrong number of components: " + s);
  return out;
}

template <std::size_t N>
bool listed(const std::vector<Bytes>& list, const std::array<std::uint8_t, N>& value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const Bytes& b) { return std::equal(b.begin(), b.end(), value.begin(), value.end()); });
}

}  // namespace

SnpPolicy load_policy(const json& j) {
  if (!j.is_object()) throw ParseError("SNP policy must be a JSON object");
  SnpPolicy p;
  for (const auto& [key, v] : j.items()) {
    if (key == "max_vmpl") p.max_vmpl = static_cast<std::uint32_t>(get_uint(v, key, 3));
    else if (key == "allow_debug") p.allow_debug = get_bool(v, key);
    else if (key == "allow_migration_agent") p.allow_migration_agent = get_bool(v, key);
    else if (key == "allow_smt") p.allow_smt = get_bool(v, key);
    else if (key == "require_single_socket") p.require_single_socket = get_bool(v, key);
    else if (key == "minimum_abi") {
      auto d = dotted(v, key, 2);
      p.minimum_abi = std::make_pair(d[0], d[1]);
    } else if (key == "minimum_tcb") {
      if (!v.is_object()) bad(key, "must be an object like {\"bl\":3,\"snp\":8}");
      for (const auto& [k, c] : v.items()) {
        auto n = static_cast<std::uint8_t>(get_uint(c, key + "." + k, 255));
        if (k == "bl") p.minimum_tcb.bl = n;
        else if (k == "tee") p.minimum_tcb.tee = n;
        else if (k == "snp") p.minimum_tcb.snp = n;
        else if (k == "ucode") p.minimum_tcb.ucode = n;
        else if (k == "fmc") p.minimum_tcb.fmc = n;
        else bad(key + "." + k, "is not a TCB component (bl, tee, snp, ucode, fmc)");
      }
    } else if (key == "check_current_tcb") p.minimum_tcb_applies_to_current = get_bool(v, key);
    else if (key == "check_launch_tcb") p.minimum_tcb_applies_to_launch = get_bool(v, key);
    else if (key == "allow_provisional_firmware") p.allow_provisional_firmware = get_bool(v, key);
    else if (key == "minimum_firmware") {
      auto d = dotted(v, key, 3);
      p.minimum_firmware = FirmwareVersion{d[0], d[1], d.size() > 2 ? d[2] : std::uint8_t{0}};
    } else if (key == "minimum_guest_svn") p.minimum_guest_svn = static_cast<std::uint32_t>(get_uint(v, key, 0xFFFFFFFFu));
    else if (key == "products") {
      if (!v.is_array()) bad(key, "must be a list of product names");
      for (const auto& n : v) {
        auto prod = n.is_string() ? product_from_name(n.get<std::string>()) : std::nullopt;
        if (!prod) bad(key, "has an unknown product: " + n.dump());
        p.allowed_products.push_back(*prod);
      }
    } else if (key == "measurements") p.measurements = get_hex_list(v, key, 48);
    else if (key == "host_data") p.host_data = get_hex_list(v, key, 32);
    else if (key == "id_key_digests") p.id_key_digests = get_hex_list(v, key, 48);
    else if (key == "author_key_digests") p.author_key_digests = get_hex_list(v, key, 48);
    else if (key == "comment" || key == "_comment") continue;  // free text for operators
    else bad(key, "is not a known policy key");
  }
  return p;
}

SnpPolicy load_policy_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw ParseError("cannot read SNP policy file " + path.string());
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw ParseError("SNP policy file " + path.string() + " is not valid JSON");
  return load_policy(j);
}

SnpVerdict validate_report(const SnpReport& r, const SnpPolicy& p, Product product) {
  using E = SnpError;
  if (r.vmpl > p.max_vmpl)
    return SnpVerdict::fail(E::vmpl, "report VMPL is " + std::to_string(r.vmpl) + ", must be <= " +
                                         std::to_string(p.max_vmpl) + " (the vTPM runs at VMPL 0)");
  if (r.policy_debug() && !p.allow_debug)
    return SnpVerdict::fail(E::policy_debug, "guest policy allows debugging (bit 19 set)");

  if (product == Product::unknown) product = r.product;
  if (!p.allowed_products.empty() &&
      std::find(p.allowed_products.begin(), p.allowed_products.end(), product) == p.allowed_products.end())
    return SnpVerdict::fail(E::policy, "product " + std::string(product_name(product)) + " is not allowed");
  if (!p.allow_migration_agent && (r.policy_migrate_ma() || !r.no_migration_agent()))
    return SnpVerdict::fail(E::policy, "a migration agent is allowed or bound (policy bit 18 / REPORT_ID_MA)");
  if (!p.allow_smt && (r.policy_smt_allowed() || r.platform_smt_enabled()))
    return SnpVerdict::fail(E::policy, "SMT is allowed by the guest policy or enabled on the platform");
  if (p.require_single_socket && !r.policy_single_socket())
    return SnpVerdict::fail(E::policy, "guest policy does not require a single socket");
  if (p.minimum_abi && std::make_pair(r.abi_major(), r.abi_minor()) < *p.minimum_abi)
    return SnpVerdict::fail(E::policy, "guest policy ABI " + std::to_string(r.abi_major()) + "." +
                                           std::to_string(r.abi_minor()) + " is below the minimum " +
                                           std::to_string(p.minimum_abi->first) + "." +
                                           std::to_string(p.minimum_abi->second));

  const TcbParts reported = decode_tcb(r.reported_tcb, product);
  const TcbParts current = decode_tcb(r.current_tcb, product);
  const TcbParts committed = decode_tcb(r.committed_tcb, product);
  const TcbParts launch = decode_tcb(r.launch_tcb, product);
  if (!p.minimum_tcb.empty()) {
    TcbParts min;
    min.bl = p.minimum_tcb.bl.value_or(0);
    min.tee = p.minimum_tcb.tee.value_or(0);
    min.snp = p.minimum_tcb.snp.value_or(0);
    min.ucode = p.minimum_tcb.ucode.value_or(0);
    min.fmc = p.minimum_tcb.fmc.value_or(0);
    min.has_fmc = p.minimum_tcb.fmc.has_value();
    auto check = [&](const char* which, const TcbParts& t) -> std::optional<SnpVerdict> {
      if (!tcb_at_least(t, min))
        return SnpVerdict::fail(E::tcb, std::string(which) + " TCB (" + tcb_text(t) + ") is below the minimum (" +
                                            tcb_text(min) + ")");
      return std::nullopt;
    };
    if (auto v = check("REPORTED", reported)) return *v;
    if (p.minimum_tcb_applies_to_current)
      if (auto v = check("CURRENT", current)) return *v;
    if (p.minimum_tcb_applies_to_launch)
      if (auto v = check("LAUNCH", launch)) return *v;
  }
  // The V(C|L)EK was derived from REPORTED_TCB, which firmware can only lower, never raise above CURRENT.
  if (!tcb_at_least(current, reported))
    return SnpVerdict::fail(E::tcb, "REPORTED TCB (" + tcb_text(reported) + ") exceeds CURRENT TCB (" +
                                        tcb_text(current) + ")");
  if (!p.allow_provisional_firmware && !(committed == current))
    return SnpVerdict::fail(E::tcb, "provisional firmware: COMMITTED TCB (" + tcb_text(committed) +
                                        ") != CURRENT TCB (" + tcb_text(current) + ")");
  if (p.minimum_firmware) {
    auto have = std::make_tuple(r.current_major, r.current_minor, r.current_build);
    auto want = std::make_tuple(p.minimum_firmware->major, p.minimum_firmware->minor, p.minimum_firmware->build);
    if (have < want)
      return SnpVerdict::fail(E::tcb, "firmware " + std::to_string(r.current_major) + "." +
                                          std::to_string(r.current_minor) + "." + std::to_string(r.current_build) +
                                          " is below the minimum");
  }
  if (p.minimum_guest_svn && r.guest_svn < *p.minimum_guest_svn)
    return SnpVerdict::fail(E::tcb, "GUEST_SVN " + std::to_string(r.guest_svn) + " is below the minimum " +
                                        std::to_string(*p.minimum_guest_svn));

  if (!p.measurements.empty() && !listed(p.measurements, r.measurement))
    return SnpVerdict::fail(E::measurement, "launch MEASUREMENT " + hex_encode(r.measurement) + " is not allowed");
  if (!p.host_data.empty() && !listed(p.host_data, r.host_data))
    return SnpVerdict::fail(E::measurement, "HOST_DATA " + hex_encode(r.host_data) + " is not allowed");
  if (!p.id_key_digests.empty() && !listed(p.id_key_digests, r.id_key_digest))
    return SnpVerdict::fail(E::measurement, "ID_KEY_DIGEST " + hex_encode(r.id_key_digest) + " is not allowed");
  if (!p.author_key_digests.empty() && !listed(p.author_key_digests, r.author_key_digest))
    return SnpVerdict::fail(E::measurement,
                            "AUTHOR_KEY_DIGEST " + hex_encode(r.author_key_digest) + " is not allowed");
  return SnpVerdict::pass();
}

}  // namespace kl::snp
