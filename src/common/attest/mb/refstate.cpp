#include "common/attest/mb/refstate.hpp"

#include <stdexcept>

#include "common/attest/mb/full_match.hpp"

namespace kl::mb {
namespace {

using nlohmann::json;

std::string str_field(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json event_to_sha256(const json& e) {
  if (!e.contains("Digests") || !e["Digests"].is_array()) return json::object();
  for (const auto& d : e["Digests"])
    if (str_field(d, "AlgorithmId") == "sha256") return json{{"sha256", "0x" + str_field(d, "Digest")}};
  return json::object();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json variable_data_to_signatures(const json& data) {
  json out = json::array();
  if (!data.is_array()) return out;
  for (const auto& entry : data) {
    if (!entry.is_object() || !entry.contains("Keys") || !entry["Keys"].is_array()) continue;
    for (const auto& k : entry["Keys"])
      if (k.is_object() && k.contains("SignatureOwner") && k.contains("SignatureData"))
        out.push_back({{"SignatureOwner", k["SignatureOwner"]}, {"SignatureData", "0x" + str_field(k, "SignatureData")}});
  }
  return out;
}

bool secureboot_enabled(const json& events) {
  for (const auto& e : events) {
    if (str_field(e, "EventType") != "EV_EFI_VARIABLE_DRIVER_CONFIG" || !e.contains("Event")) continue;
    const auto& ev = e["Event"];
    if (str_field(ev, "UnicodeName") != "SecureBoot") continue;
    if (ev.contains("VariableData") && ev["VariableData"].is_object() && ev["VariableData"].contains("Enabled"))
      return str_field(ev["VariableData"], "Enabled") == "Yes";
  }
  return false;  // upstream: "could not be determined; assuming disabled"
}

bool is_ipl(const json& e, std::uint32_t pcr) {
  return str_field(e, "EventType") == "EV_IPL" && e.contains("PCRIndex") && e["PCRIndex"] == pcr;
}

std::string ipl_string(const json& e) { return e.contains("Event") ? str_field(e["Event"], "String") : std::string(); }

std::optional<json> get_kernel(const json& events, bool secure_boot) {
  static const detail::FullMatch kFirmwareApp(
      R"(FvVol\(\w{8}-\w{4}-\w{4}-\w{4}-\w{12}\)/FvFile\(\w{8}-\w{4}-\w{4}-\w{4}-\w{12}\).*)", true);
  std::vector<json> apps;
  for (const auto& e : events) {
    if (str_field(e, "EventType") != "EV_EFI_BOOT_SERVICES_APPLICATION") continue;
    // Firmware-internal applications (UiApp, shell) are not part of the OS boot chain.
    if (kFirmwareApp.matches(e.contains("Event") ? str_field(e["Event"], "DevicePath") : std::string())) continue;
    apps.push_back(event_to_sha256(e));
  }
  json kernel = json::object();
  auto sha = [](const json& d) { return d.value("sha256", json(nullptr)); };
  if (secure_boot) {
    if (apps.size() != 3 && apps.size() != 4) return std::nullopt;
    kernel["kernel_authcode_sha256"] = sha(apps[2]);
  } else if (apps.size() != 2) {
    return std::nullopt;
  }
  kernel["shim_authcode_sha256"] = sha(apps[0]);
  kernel["grub_authcode_sha256"] = sha(apps[1]);
  for (const auto& e : events) {
    if (!is_ipl(e, 9)) continue;
    auto s = ipl_string(e);
    if (s.find("initrd") != std::string::npos || s.find("initramfs") != std::string::npos) {
      kernel["initrd_plain_sha256"] = sha(event_to_sha256(e));
      break;
    }
  }
  if (!secure_boot) {
    for (const auto& e : events) {
      if (!is_ipl(e, 9)) continue;
      if (ipl_string(e).find("vmlinuz") != std::string::npos) {
        kernel["vmlinuz_plain_sha256"] = sha(event_to_sha256(e));
        break;
      }
    }
  }
  static constexpr std::string_view kPrefix = "kernel_cmdline: ";
  for (const auto& e : events) {
    if (!is_ipl(e, 8)) continue;
    auto s = ipl_string(e);
    if (s.find("kernel_cmdline") != std::string::npos) {
      kernel["kernel_cmdline"] = python_re_escape(s.size() > kPrefix.size() ? s.substr(kPrefix.size()) : std::string());
      break;
    }
  }
  return kernel;
}

}  // namespace

std::string python_re_escape(std::string_view text) {
  static constexpr std::string_view kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) {
    if (kSpecial.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

json create_refstate(const json& parsed_log, const RefstateOptions& options) {
  const json events = parsed_log.is_object() ? parsed_log.value("events", json::array()) : json::array();
  if (!events.is_array() || events.empty()) throw std::invalid_argument("No events found on binary boot measurements log");
  const bool has_sb = secureboot_enabled(events);
  if (!has_sb && !options.allow_no_secureboot)
    throw std::invalid_argument("Provided eventlog has SecureBoot disabled, but -i flag was not set");

  json scrtm_and_bios = json::object();
  for (const auto& e : events)
    if (str_field(e, "EventType") == "EV_S_CRTM_VERSION") {
      scrtm_and_bios["scrtm"] = event_to_sha256(e);
      break;
    }
  json pf = json::array();
  for (const auto& e : events) {
    auto t = str_field(e, "EventType");
    if (t == "EV_EFI_PLATFORM_FIRMWARE_BLOB" || t == "EV_EFI_PLATFORM_FIRMWARE_BLOB2") pf.push_back(event_to_sha256(e));
  }
  scrtm_and_bios["platform_firmware"] = std::move(pf);

  json out = json::object();
  out["has_secureboot"] = has_sb;
  out["scrtm_and_bios"] = json::array({std::move(scrtm_and_bios)});
  for (const char* k : {"pk", "kek", "db", "dbx"}) out[k] = json::array();
  for (const auto& e : events) {
    if (str_field(e, "EventType") != "EV_EFI_VARIABLE_DRIVER_CONFIG" || !e.contains("Event")) continue;
    const auto& ev = e["Event"];
    if (!ev.is_object() || !ev.contains("UnicodeName")) continue;
    auto name = lower(str_field(ev, "UnicodeName"));
    if (name != "pk" && name != "kek" && name != "db" && name != "dbx") continue;
    if (ev.contains("VariableData") && !ev["VariableData"].is_null())
      out[name] = variable_data_to_signatures(ev["VariableData"]);
  }
  json vendor_db = json::array();
  for (const auto& e : events) {
    if (str_field(e, "EventType") != "EV_EFI_VARIABLE_AUTHORITY" || !e.contains("Event")) continue;
    const auto& ev = e["Event"];
    if (lower(str_field(ev, "UnicodeName")) != "vendor_db" || !ev.contains("VariableData") ||
        !ev["VariableData"].is_array())
      continue;
    for (const auto& s : ev["VariableData"])
      if (s.is_object() && s.contains("SignatureOwner") && s.contains("SignatureData"))
        vendor_db.push_back({{"SignatureOwner", s["SignatureOwner"]}, {"SignatureData", "0x" + str_field(s, "SignatureData")}});
  }
  out["vendor_db"] = std::move(vendor_db);
  json mokdig = json::array(), mokxdig = json::array();
  for (const auto& e : events) {
    if (str_field(e, "EventType") != "EV_IPL") continue;
    auto s = ipl_string(e);
    if (s == "MokList") mokdig.push_back(event_to_sha256(e));
    else if (s == "MokListX") mokxdig.push_back(event_to_sha256(e));
  }
  out["mokdig"] = std::move(mokdig);
  out["mokxdig"] = std::move(mokxdig);
  if (auto kernel = get_kernel(events, has_sb)) out["kernels"] = json::array({std::move(*kernel)});
  return out;
}

}  // namespace kl::mb
