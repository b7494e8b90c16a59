#include "tools/policy/create_measured_boot.hpp"

#include <algorithm>
#include <string_view>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/mb/boot_log.hpp"
#include "common/attest/mb/refstate.hpp"
#include "common/attest/parse_error.hpp"
#include "tools/policy/file_io.hpp"
#include "tools/policy/python_json.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using Kind = OptionSpec::Kind;

// Every key the generator writes, in the order upstream's dict literals create them.
constexpr std::string_view kKeyOrder[] = {
    "has_secureboot", "scrtm_and_bios", "scrtm", "platform_firmware", "pk", "kek", "db", "dbx", "vendor_db",
    "mokdig", "mokxdig", "kernels", "kernel_authcode_sha256", "shim_authcode_sha256", "grub_authcode_sha256",
    "initrd_plain_sha256", "vmlinuz_plain_sha256", "kernel_cmdline", "SignatureOwner", "SignatureData", "sha256"};

std::size_t rank(const std::string& key) {
  auto it = std::find(std::begin(kKeyOrder), std::end(kKeyOrder), key);
  return static_cast<std::size_t>(it - std::begin(kKeyOrder));
}

ordered_json reorder(const json& v) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
    std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
    ordered_json o = ordered_json::object();
    for (const auto& k : keys) o[k] = reorder(v[k]);
    return o;
  }
  if (v.is_array()) {
    ordered_json a = ordered_json::array();
    for (const auto& e : v) a.push_back(reorder(e));
    return a;
  }
  return ordered_json::parse(v.dump());
}

}  // namespace

ordered_json refstate_in_upstream_order(const json& refstate) { return reorder(refstate); }

ArgParser create_measured_boot_parser() {
  ArgParser p("keylime-policy create measured-boot", "Create a measured-boot reference state from a UEFI event log.");
  p.add(option("-e", "--eventlog-file", "eventlog_file", Kind::value, "FILE",
         "binary UEFI event log, usually /sys/kernel/security/tpm0/binary_bios_measurements", true));
  p.add(option("-i", "--without-secureboot", "without_secureboot", Kind::flag, "",
         "accept a log of a boot without Secure Boot (measured boot only)"));
  p.add(option("-o", "--output", "output", Kind::value, "FILE",
         "where to write the reference state; '-' (default) is standard output"));
  p.add(option("-v", "--verbose", "verbose", Kind::flag, "", "also log debug messages"));
  return p;
}

int run_create_measured_boot(const std::vector<std::string>& args) {
  const ArgParser parser = create_measured_boot_parser();
  const ParsedArgs a = parser.parse(args);
  if (auto rc = handle_help_or_error(parser, a)) return *rc;
  ToolLog log(a.flag("verbose"));

  const std::string path = a.value("eventlog_file");
  std::string err;
  auto bytes = read_file(path, err);
  if (!bytes) {
    log.error("Parsing of binary boot measurements (" + path + ") failed with: " + err);
    return 1;
  }
  json parsed;
  try {
    parsed = kl::mb::parse_boot_log(as_bytes(*bytes)).data;
  } catch (const std::exception& e) {
    log.error("Parsing of binary boot measurements (" + path + ") failed with: " + e.what());
    return 1;
  }

  kl::mb::RefstateOptions opt;
  opt.allow_no_secureboot = a.flag("without_secureboot");
  json refstate;
  try {
    refstate = kl::mb::create_refstate(parsed, opt);
  } catch (const std::invalid_argument& e) {
    log.error(e.what());
    return 1;
  }
  const bool has_sb = refstate.value("has_secureboot", false);
  if (has_sb && opt.allow_no_secureboot)
    log.warning("-i/--without-secureboot was set to create a reference state without SecureBoot, but the provided "
                "eventlog has SecureBoot enabled. Ignoring this flag");
  if (!has_sb)
    log.info("Adding plain sha256 digest of vmlinuz for GRUB to reference state, because SecureBoot is disabled");
  if (!refstate.contains("kernels"))
    log.error(has_sb ? "Expected 3 different UEFI applications to be booted (Shim, Grub, Linux); the reference "
                       "state has no kernels entry"
                     : "Expected 2 different UEFI applications to be booted (Shim, Grub); the reference state has "
                       "no kernels entry");

  if (!write_output(a.value("output", "-"), python_dumps(refstate_in_upstream_order(refstate)), err)) {
    log.error("Unable to write the reference state: " + err);
    return 1;
  }
  return 0;
}

}  // namespace kl::tools
