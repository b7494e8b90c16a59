#include "tools/policy/create_runtime.hpp"

#include <algorithm>
#include <stdexcept>

#include "common/attest/ima/keyring.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "common/attest/policy/exclude_regex.hpp"
#include "common/attest/policy/legacy_conversion.hpp"
#include "tools/policy/digest_algorithm.hpp"
#include "tools/policy/file_io.hpp"
#include "tools/policy/initrd_digests.hpp"
#include "tools/policy/measurement_list_digests.hpp"
#include "tools/policy/python_json.hpp"
#include "tools/policy/rootfs_digests.hpp"

namespace kl::tools {
namespace {

using kl::policy::DigestMap;
using kl::policy::RuntimePolicy;
using nlohmann::json;
using Kind = OptionSpec::Kind;

std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\v\f";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    f(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
}

void merge_into(DigestMap& into, const DigestMap& from) {
  for (const auto& [k, v] : from) into[k].insert(into[k].end(), v.begin(), v.end());
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}
void sort_unique(DigestMap& m) {
  for (auto& [k, v] : m) sort_unique(v);
}

// The keyring's JSON text in upstream's key order ({"pubkeys": [...], "keyids": [...]}).
std::string keyring_text(const kl::ima::ImaKeyring& ring) {
  json j = ring.to_json();
  nlohmann::ordered_json o;
  o["pubkeys"] = j.value("pubkeys", json::array());
  o["keyids"] = j.value("keyids", json::array());
  return python_dumps(o);
}

bool add_verification_keys(const std::vector<std::string>& files, RuntimePolicy& policy, const ToolLog& log) {
  if (files.empty()) return true;
  std::optional<kl::ima::ImaKeyring> ring;
  if (!policy.verification_keys.empty()) {
    ring = kl::ima::ImaKeyring::from_string(policy.verification_keys);
    if (!ring) {
      log.error("Could not create IMA Keyring from JSON");
      return true;  // upstream keeps the policy's keys untouched
    }
  } else {
    ring.emplace();
  }
  for (const auto& f : files) {
    std::string err;
    auto data = read_file(f, err);
    if (!data) {
      log.error("File '" + f + "' is not a file with a key: " + err);
      continue;
    }
    try {
      auto key = kl::ima::key_from_buffer(as_bytes(*data));
      if (!key) {
        log.error("File '" + f + "' is not a file with a key");
        continue;
      }
      ring->add(key->key, key->keyid);
    } catch (const std::exception& e) {
      log.error("File '" + f + "' does not have a supported key: " + e.what());
    }
  }
  if (!ring->empty()) policy.verification_keys = keyring_text(*ring);
  return true;
}

}  // namespace

void add_flat_allowlist(std::string_view text, DigestMap& digests) {
  for_each_line(text, [&](std::string_view raw) {
    std::string_view line = strip(raw);
    if (line.empty()) return;
    auto sep = line.find_first_of(" \t\n\r\v\f");
    if (sep == std::string_view::npos) return;
    std::string_view hash = line.substr(0, sep);
    std::string path(strip(line.substr(sep)));
    if (path.empty()) return;
    std::replace(path.begin(), path.end(), ' ', '_');
    digests[path].emplace_back(hash);
  });
}

std::optional<std::string> add_exclude_list(std::string_view text, std::vector<std::string>& excludes) {
  std::vector<std::string> lines;
  std::optional<std::string> failure;
  for_each_line(text, [&](std::string_view raw) {
    if (failure) return;
    std::string line(strip(raw));
    if (line.empty()) return;
    try {
      kl::policy::ExcludeRegex check({line});
    } catch (const std::invalid_argument& e) {
      failure = "Bad IMA exclude list rule '" + line + "': " + e.what();
      return;
    }
    lines.push_back(line);
  });
  if (failure) return failure;
  excludes.insert(excludes.end(), lines.begin(), lines.end());
  return std::nullopt;
}

RuntimePolicy base_policy_from_json(const json& base) {
  if (!base.is_object()) throw std::invalid_argument("the base policy is not a JSON object");
  json j = kl::policy::to_json(kl::policy::empty_runtime_policy());
  for (const char* key : {"digests", "keyrings", "ima-buf"})
    if (base.contains(key)) j[key] = base[key];
  if (base.contains("excludes")) j["excludes"] = base["excludes"];
  j["verification-keys"] = base.value("verification-keys", json(""));
  if (base.contains("ima") && base["ima"].is_object()) {
    const auto& ima = base["ima"];
    j["ima"]["log_hash_alg"] = ima.value("log_hash_alg", json("sha1"));
    if (ima.contains("ignored_keyrings")) j["ima"]["ignored_keyrings"] = ima["ignored_keyrings"];
  } else if (base.contains("ima")) {
    throw std::invalid_argument("'ima' is not of type 'object'");
  }
  if (auto err = kl::policy::schema_error(j)) throw std::invalid_argument(*err);
  RuntimePolicy p = kl::policy::runtime_policy_from_json(j);
  sort_unique(p.excludes);
  sort_unique(p.ima.ignored_keyrings);
  return p;
}

std::string legacy_allowlist_text(const DigestMap& digests) {
  std::string out;
  auto agg = digests.find("boot_aggregate");
  if (agg != digests.end())
    for (const auto& d : agg->second) out += d + "  boot_aggregate\n";
  for (const auto& [name, list] : digests) {
    if (name == "boot_aggregate") continue;
    for (const auto& d : list) out += d + "  " + name + "\n";
  }
  return out;
}

ArgParser create_runtime_parser() {
  ArgParser p("keylime-policy create runtime", "Create a runtime (IMA) policy.");
  std::string algos;
  for (const auto& a : hash_algorithm_names()) algos += (algos.empty() ? "" : ", ") + a;
  p.add(option("", "--algo", "algo", Kind::value, "ALGO",
         "checksum algorithm for --rootfs digests; by default the algorithm of the other inputs, else sha256",
         false, hash_algorithm_names()));
  p.add(option("", "--ramdisk-dir", "ramdisk_dir", Kind::value, "DIR",
         "directory holding initrd images (initr*), such as /boot"));
  p.add(option("", "--rootfs", "rootfs", Kind::value, "DIR", "root of the filesystem tree to hash, such as /"));
  p.add(option("-s", "--skip-path", "skip_path", Kind::value, "DIRS",
         "directories under --rootfs to leave out, separated by commas"));
  p.add(option("-o", "--output", "output", Kind::value, "FILE", "where to write the policy (standard output by default)"));
  p.add(option("-p", "--base-policy", "base_policy", Kind::value, "FILE", "start from this JSON runtime policy and add the new entries to it"));
  p.add(option("-k", "--keyrings", "get_keyrings", Kind::flag, "", "add keyrings entries for the certificates of ima-buf lines"));
  p.add(option("-b", "--ima-buf", "get_ima_buf", Kind::flag, "", "add ima-buf entries for the ima-buf lines that carry no certificate"));
  p.add(option("-a", "--allowlist", "allowlist", Kind::value, "FILE", "take digests from a flat '<digest> <path>' allowlist"));
  p.add(option("-e", "--excludelist", "exclude_list_file", Kind::value, "FILE",
         "file of exclude regexes, one per line, to put into the policy"));
  p.add(option("-m", "--ima-measurement-list", "ima_measurement_list", Kind::optional_value, "FILE",
         std::string("take digests (and, with -k/-b, keyring and ima-buf entries) from an ASCII IMA measurement "
                     "list; given without FILE: ") + kImaMeasurementList + "; /dev/null: none"));
  p.add(option("", "--ignored-keyrings", "ignored_keyrings", Kind::append, "KEYRING",
         "keyring name for ima.ignored_keyrings (repeatable)"));
  p.add(option("", "--add-ima-signature-verification-key", "ima_signature_keys", Kind::append, "FILE",
         "key for verification-keys: an X.509 certificate, public or private key, DER or PEM (repeatable)"));
  p.add(option("", "--show-legacy-allowlist", "legacy_allowlist", Kind::flag, "",
         "write the digests as a legacy flat allowlist instead of the policy"));
  p.add(option("-v", "--verbose", "verbose", Kind::flag, "", "also log debug messages"));
  return p;
}

int run_create_runtime(const std::vector<std::string>& args) {
  const ArgParser parser = create_runtime_parser();
  const ParsedArgs a = parser.parse(args);
  if (auto rc = handle_help_or_error(parser, a)) return *rc;
  ToolLog log(a.flag("verbose"));

  RuntimePolicy policy = kl::policy::empty_runtime_policy();
  std::string base_algo, allowlist_algo, ima_algo, err;

  if (a.has("base_policy")) {
    const std::string path = a.value("base_policy");
    auto text = read_file(path, err);
    if (!text) {
      log.error("An error occurred while loading the policy: " + err);
      return 1;
    }
    json base;
    try {
      base = json::parse(*text);
    } catch (const json::exception& e) {
      log.error("An error occurred while parsing a JSON object from file " + path + ": " + e.what());
      return 1;
    }
    try {
      policy = base_policy_from_json(base);
    } catch (const std::exception& e) {
      log.error(std::string("Could not convert the provided base policy to a valid runtime policy: ") + e.what());
      return 1;
    }
    // An empty base policy names no algorithm (upstream aborts on it; see docs/policy-tool.md).
    if (!policy.digests.empty()) base_algo = algorithm_from_digest_map(policy.digests, true);
  }

  if (a.has("algo") && !(a.has("ramdisk_dir") || a.has("rootfs")))
    log.warning("You need to specify at least one of --ramdisk-dir or --rootfs to use a custom digest algorithm");

  DigestMap allowlist_digests, ima_digests, rootfs_digests;
  if (a.has("allowlist")) {
    auto text = read_file(a.value("allowlist"), err);
    if (!text) {
      log.error("An error occurred while accessing the allowlist: " + err);
      return 1;
    }
    add_flat_allowlist(*text, allowlist_digests);
    if (!allowlist_digests.empty()) allowlist_algo = algorithm_from_digest_map(allowlist_digests, true);
  }

  std::optional<std::string> ima_list_text;
  if (a.has("ima_measurement_list") && a.value("ima_measurement_list") != "/dev/null") {
    std::string ima_list = a.value("ima_measurement_list");
    if (ima_list.empty()) ima_list = kImaMeasurementList;
    log.debug("Measurement list is " + ima_list);
    if (!is_regular_file(ima_list)) {
      log.warning("The IMA measurement list file '" + ima_list + "' does not seem to exist");
      return 1;
    }
    ima_list_text = read_file(ima_list, err);
    if (!ima_list_text) {
      log.error("An error occurred: " + err);
      return 1;
    }
    ima_algo = boot_aggregate_of_list(*ima_list_text).first;
    add_measurement_list_digests(*ima_list_text, ima_digests);
  }

  auto chosen = choose_algorithm({{a.value("algo"), "--algo option"},
                                  {base_algo, "base policy"},
                                  {allowlist_algo, "allowlist"},
                                  {ima_algo, "IMA measurement list"}},
                                 log);
  if (!chosen) return 1;
  std::string algo = *chosen;
  if (algo.empty()) {
    algo = "sha256";
    log.debug("Using default digest algorithm sha256");
  } else if (algo == kSha256OrSm3) {
    algo = "sha256";  // nothing decided between the two: hash new files with SHA-256
    log.debug("Digest length fits sha256 and sm3_256; using sha256");
  }

  const kl::crypto::HashAlg hash = *kl::crypto::hash_from_name(algo);
  DigestMap ramdisk_digests;
  if (a.has("ramdisk_dir")) {
    try {
      for (const auto& initrd : list_initrds(a.value("ramdisk_dir"))) add_initrd_digests(initrd, hash, ramdisk_digests, log);
    } catch (const std::exception& e) {
      log.error(e.what());
      return 1;
    }
  }

  if (a.has("rootfs")) {
    try {
      add_rootfs_digests(a.value("rootfs"), a.value("skip_path"), hash, rootfs_digests, log);
    } catch (const std::exception& e) {
      log.error(e.what());
      return 1;
    }
  }

  for (const DigestMap* m : {&allowlist_digests, &ima_digests, &rootfs_digests, &ramdisk_digests}) merge_into(policy.digests, *m);

  if (a.has("exclude_list_file")) {
    auto text = read_file(a.value("exclude_list_file"), err);
    if (!text) {
      log.error("An error occurred: " + err);
      return 1;
    }
    if (auto bad = add_exclude_list(*text, policy.excludes)) {
      log.warning(*bad);
      return 1;
    }
  }

  for (const auto& k : a.list("ignored_keyrings")) policy.ima.ignored_keyrings.push_back(k);
  if ((a.flag("get_keyrings") || a.flag("get_ima_buf")) && ima_list_text)
    add_ima_buf_digests(*ima_list_text, policy.ima.ignored_keyrings, a.flag("get_keyrings"), policy.keyrings,
                        a.flag("get_ima_buf"), policy.ima_buf);

  add_verification_keys(a.list("ima_signature_keys"), policy, log);

  sort_unique(policy.digests);
  sort_unique(policy.keyrings);
  sort_unique(policy.ima_buf);
  sort_unique(policy.excludes);
  sort_unique(policy.ima.ignored_keyrings);
  policy.meta.generator = static_cast<int>(kl::policy::Generator::LegacyAllowList);
  policy.meta.timestamp = kl::policy::python_now_timestamp();

  if (auto bad = kl::policy::schema_error(kl::policy::to_json(policy))) {
    log.error("Base policy is not a valid runtime policy: " + *bad);
    return 1;
  }
  try {
    kl::policy::CompiledPolicy::compile(policy);  // what the verifier will do with it
  } catch (const std::exception& e) {
    log.error(std::string("The resulting policy would be rejected by the verifier: ") + e.what());
    return 1;
  }

  const std::string out = a.flag("legacy_allowlist") ? legacy_allowlist_text(policy.digests) : kl::policy::to_text(policy);
  if (!write_output(a.value("output", "/dev/stdout"), out, err)) {
    log.error("An error occurred while writing the policy: " + err);
    return 1;
  }
  return 0;
}

}  // namespace kl::tools
