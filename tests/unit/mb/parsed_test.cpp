#include <catch2/catch.hpp>

#include "common/attest/mb/boot_log.hpp"
#include "common/attest/mb/device_path.hpp"
#include "common/attest/mb/parsed.hpp"
#include "unit/mb/log_builder.hpp"
#include "unit/mb/sample_logs.hpp"

using namespace kl;
using namespace kl::mb;
using namespace kl::mb::testing;
using nlohmann::json;

namespace {

// tpm2_eventlog 5.4 prints escaped strings in quotes; Keylime strips the quotes and the trailing NUL.
std::string keylime_unescape(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  if (s.size() >= 2 && s.compare(s.size() - 2, 2, "\\0") == 0) s.resize(s.size() - 2);
  return s;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) return s.substr(1, s.size() - 2);
  return s;
}

std::uint64_t yaml_int(const std::string& s) { return std::stoull(s, nullptr, 0); }

}  // namespace

TEST_CASE("decoded events carry the fields tpm2_eventlog prints, after Keylime's unescaping") {
  for (const auto& s : valid_samples()) {
    INFO(s.name);
    auto parsed = parse_boot_log(sample_bytes(s));
    auto yaml = read_yaml_reference(mb_dir() + s.yaml);
    const auto& events = parsed.data["events"];
    REQUIRE(events.size() == yaml.events.size());
    std::size_t checked = 0;
    for (std::size_t i = 1; i < events.size(); ++i) {
      const auto& e = events[i];
      const auto& y = yaml.events[i];
      INFO("event " << i << " " << y.type);
      CHECK(e["EventType"] == y.type);
      CHECK(e["PCRIndex"] == y.pcr);
      CHECK(e["EventSize"] == y.event_size);
      CHECK(e["DigestCount"] == y.digests.size());
      CHECK(e["Digests"][0]["AlgorithmId"] == y.digests[0].first);
      CHECK(e["Digests"][0]["Digest"] == y.digests[0].second);
      const json& ev = e["Event"];
      for (const auto& [k, v] : y.fields) {
        if (k == "VariableName" || k == "UnicodeName") {
          CHECK(ev[k] == v);
        } else if (k == "UnicodeNameLength" || k == "VariableDataLength" || k == "LengthOfDevicePath" ||
                   k == "ImageLengthInMemory") {
          CHECK(ev[k] == yaml_int(v));
        } else if (k == "BlobBase" || k == "BlobLength" || k == "ImageLocationInMemory") {
          CHECK(ev[k] == yaml_int(v));
        } else if (k == "Enabled") {
          CHECK(ev["VariableData"]["Enabled"] == unquote(v));
        } else if (k == "Description") {
          CHECK(ev["VariableData"]["Description"] == unquote(v));
        } else if (k == "String" && y.type == "EV_IPL") {
          if (v.size() >= 3 && v.compare(v.size() - 3, 3, "\\0\"") != 0) {
            // A multi-line string: tpm2-tools 5.4 quotes each line separately (Keylime then keeps stray quotes
            // between lines); we keep the event's own bytes. The first line must agree.
            CHECK(ev["String"].get<std::string>().rfind(unquote(v), 0) == 0);
          } else {
            CHECK(ev["String"] == keylime_unescape(v));
          }
        } else if (k == "SignatureOwner" && ev["VariableData"].is_array()) {
          const auto& vd = ev["VariableData"][0];
          CHECK((vd.contains("Keys") ? vd["Keys"][0]["SignatureOwner"] : vd["SignatureOwner"]) == v);
        } else if (k == "SignatureType") {
          CHECK(ev["VariableData"][0]["SignatureType"] == v);
        } else if (k == "DiskGUID") {
          CHECK(ev["Header"]["DiskGUID"] == v);
        } else if (k == "NumberOfPartitions") {
          CHECK(ev["NumberOfPartitions"] == yaml_int(v));
        } else if (k == "StartupLocality") {
          CHECK(ev["StartupLocality"] == yaml_int(v));
        } else if (k == "Event" && !v.empty() && v != "|-") {
          // inline hex (separators, unknown data) or a one-line text block
          CHECK(ev == (v.front() == '"' ? unquote(v) : v));
        } else {
          continue;
        }
        ++checked;
      }
    }
    CHECK(checked > 100);
  }
}

TEST_CASE("Secure Boot variables, key lists and boot entries of the secure-boot sample") {
  auto parsed = parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements-secureboot"));
  const auto& events = parsed.data["events"];
  auto find_var = [&](const std::string& name, const std::string& type) -> const json& {
    for (const auto& e : events)
      if (e["EventType"] == type && e.contains("Event") && e["Event"].is_object() && e["Event"].value("UnicodeName", "") == name)
        return e;
    FAIL("no " << name);
    throw;
  };
  CHECK(find_var("SecureBoot", "EV_EFI_VARIABLE_DRIVER_CONFIG")["Event"]["VariableData"] == json{{"Enabled", "Yes"}});
  const auto& pk = find_var("PK", "EV_EFI_VARIABLE_DRIVER_CONFIG")["Event"]["VariableData"];
  REQUIRE(pk.size() == 1);
  CHECK(pk[0]["SignatureType"] == "a5c059a1-94e4-4aa7-87b5-ab155c2bf072");
  CHECK(pk[0]["SignatureListSize"] == 976);
  CHECK(pk[0]["SignatureSize"] == 948);
  CHECK(pk[0]["Keys"][0]["SignatureOwner"] == "a0baa8a3-041d-48a8-bc87-c36d121b5e3d");
  CHECK(pk[0]["Keys"][0]["SignatureData"].get<std::string>().rfind("308203a030820288", 0) == 0);
  CHECK(pk[0]["Keys"][0]["SignatureData"].get<std::string>().size() == 2 * (948 - 16));
  CHECK(find_var("KEK", "EV_EFI_VARIABLE_DRIVER_CONFIG")["Event"]["VariableData"].size() == 3);
  const auto& dbx = find_var("dbx", "EV_EFI_VARIABLE_DRIVER_CONFIG")["Event"]["VariableData"];
  REQUIRE(!dbx.empty());
  CHECK(dbx[0]["SignatureType"] == "c1c41626-504c-4092-aca9-41f936934328");  // SHA-256 hashes
  CHECK(find_var("BootOrder", "EV_EFI_VARIABLE_BOOT")["Event"]["VariableData"] ==
        json::array({"Boot0001", "Boot0002", "Boot0000"}));
  const auto& boot1 = find_var("Boot0001", "EV_EFI_VARIABLE_BOOT")["Event"]["VariableData"];
  CHECK(boot1["Enabled"] == "Yes");
  CHECK(boot1["FilePathListLength"] == 98);
  CHECK(boot1["Description"] == "Red Hat Enterprise Linux");
  CHECK(boot1["DevicePath"] ==
        "HD(1,GPT,a88ed452-9a52-45c4-91ce-3da7707caaab,0x800,0x12c000)/File(\\EFI\\redhat\\shimx64.efi)");
  CHECK(find_var("SbatLevel", "EV_EFI_VARIABLE_AUTHORITY")["Event"]["VariableData"]["String"] ==
        "sbat,1,2023012900\nshim,2\ngrub,3\ngrub.debian,4\n");
  const auto& db_auth = find_var("db", "EV_EFI_VARIABLE_AUTHORITY")["Event"]["VariableData"];
  REQUIRE(db_auth.size() == 1);
  CHECK(db_auth[0]["SignatureOwner"] == "77fa9abd-0359-4d32-bd60-28f4e78f784b");

  // The boot chain: shim from the ESP, grub by file path, the kernel without a device path.
  std::vector<std::string> bsa_paths;
  for (const auto& e : events)
    if (e["EventType"] == "EV_EFI_BOOT_SERVICES_APPLICATION") bsa_paths.push_back(e["Event"]["DevicePath"]);
  REQUIRE(bsa_paths.size() == 3);
  CHECK(bsa_paths[0] ==
        "PciRoot(0x0)/Pci(0x2,0x3)/Pci(0x0,0x0)/HD(1,GPT,a88ed452-9a52-45c4-91ce-3da7707caaab,0x800,0x12c000)/"
        "File(\\EFI\\redhat\\shimx64.efi)");
  CHECK(bsa_paths[1] == "File(\\EFI\\redhat\\grubx64.efi)");
  CHECK(bsa_paths[2] == "");

  // IPL strings lose tpm2-tools' quotes and the NUL; the kernel command line is there verbatim.
  bool cmdline = false;
  for (const auto& e : events)
    if (e["EventType"] == "EV_IPL" && e["PCRIndex"] == 8 &&
        e["Event"]["String"].get<std::string>().rfind("kernel_cmdline: (hd0,gpt2)/vmlinuz-5.14.0", 0) == 0)
      cmdline = true;
  CHECK(cmdline);
  const auto& gpt = [&]() -> const json& {
    for (const auto& e : events)
      if (e["EventType"] == "EV_EFI_GPT_EVENT") return e["Event"];
    throw std::runtime_error("no GPT event");
  }();
  CHECK(gpt["Header"]["Signature"] == "EFI PART");
  CHECK(gpt["NumberOfPartitions"] == 3);
  CHECK(gpt["Partitions"].size() == 3);
}

TEST_CASE("the parsed log carries replayed PCRs and boot aggregates per bank") {
  auto parsed = parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements"));
  const auto& d = parsed.data;
  CHECK(d["version"] == 2);
  CHECK(d["pcrs"]["sha1"]["14"] == "ffaf5dfab351dc9b3b7a3cf748759e137f1601a8");
  CHECK(d["pcrs"]["sha256"]["7"] == "741fd028c51b4d2fbdcc7f28014cc758d17ccc1fe2ea7ca17b0e8009480a557c");
  CHECK(d["boot_aggregates"]["sha1"].size() == 2);
  CHECK(d["boot_aggregates"]["sha256"].size() == 2);
  const auto& spec = d["events"][0]["SpecID"][0];
  CHECK(spec["Signature"] == "Spec ID Event03");
  CHECK(spec["numberOfAlgorithms"] == 2);
  CHECK(spec["Algorithms"][1]["algorithmId"] == "sha256");
  CHECK(d["events"][0]["Digest"] == std::string(40, '0'));
}

TEST_CASE("odd event data is shown as hex, never read past its end") {
  LogBuilder b;
  b.add(7, ev::kEfiVariableDriverConfig, *hex_decode("0102"));                   // shorter than the header
  b.add(4, ev::kEfiBootServicesApplication, *hex_decode("00112233"));            // shorter than 32 bytes
  b.add(0, ev::kEfiPlatformFirmwareBlob, *hex_decode("0011"));                   // shorter than 16 bytes
  b.add(5, ev::kEfiGptEvent, Bytes(101, 0));                                     // partition count mismatch
  // A variable whose UnicodeNameLength points far beyond the event.
  Bytes var = efi_variable(efi_global_guid(), "PK", {});
  var[16] = 0xFF, var[17] = 0xFF, var[23] = 0x7F;
  b.add(7, ev::kEfiVariableDriverConfig, var);
  // A PK whose signature list claims to be larger than the variable: the list is left out.
  Bytes list = *hex_decode("a159c0a5e494a74a87b5ab155c2bf072");
  Bytes sizes = *hex_decode("00100000" "00000000" "20000000");
  list.insert(list.end(), sizes.begin(), sizes.end());
  list.resize(list.size() + 32, 0xAB);
  b.add(7, ev::kEfiVariableDriverConfig, efi_variable(efi_global_guid(), "PK", list));
  auto parsed = parse_boot_log(b.bytes());
  const auto& ev = parsed.data["events"];
  CHECK(ev[1]["Event"] == "0102");
  CHECK(ev[2]["Event"] == "00112233");
  CHECK(ev[3]["Event"] == "0011");
  CHECK(ev[4]["Event"].is_string());
  CHECK(ev[5]["Event"].is_string());
  CHECK(ev[6]["Event"]["UnicodeName"] == "PK");
  CHECK(ev[6]["Event"]["VariableData"] == json::array());
}

TEST_CASE("synthetic variables: SecureBoot off, MokListTrusted, BootOrder of odd length, empty values") {
  LogBuilder b;
  b.add(7, ev::kEfiVariableDriverConfig, efi_variable(efi_global_guid(), "SecureBoot", *hex_decode("00")));
  b.add(7, ev::kEfiVariableDriverConfig, efi_variable(efi_global_guid(), "SecureBoot", {}));
  Bytes shim_guid = *hex_decode("50ab5d6046e00043abb63dd810dd8b23");
  b.add(7, ev::kEfiVariableAuthority, efi_variable(shim_guid, "MokListTrusted", *hex_decode("01")));
  b.add(1, ev::kEfiVariableBoot, efi_variable(efi_global_guid(), "BootOrder", *hex_decode("000100")));
  b.add_text(8, ev::kIpl, std::string("grub_cmd: echo \"hi\"\\n", 21) + std::string(1, '\0'));
  b.add(8, ev::kIpl, *hex_decode("ff6b65726e656c00"));  // not UTF-8: taken as Latin-1
  auto parsed = parse_boot_log(b.bytes());
  const auto& ev = parsed.data["events"];
  CHECK(ev[1]["Event"]["VariableData"] == json{{"Enabled", "No"}});
  CHECK(ev[2]["Event"]["VariableData"] == json{{"Enabled", "No"}});
  CHECK(ev[3]["Event"]["VariableName"] == "605dab50-e046-4300-abb6-3dd810dd8b23");
  CHECK(ev[3]["Event"]["VariableData"] == json{{"Enabled", "Yes"}});
  CHECK(ev[4]["Event"]["VariableData"] == "000100");
  CHECK(ev[5]["Event"]["String"] == "grub_cmd: echo \"hi\"\\n");
  CHECK(ev[6]["Event"]["String"] == "\xc3\xbfkernel");
  CHECK_NOTHROW(parsed.data.dump());
}

TEST_CASE("device paths in libefivar's spelling, hostile node lengths stop the rendering") {
  CHECK(device_path_to_text(*hex_decode("02010c00d041030a0000000001010600030201010600000004071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400")) ==
        "PciRoot(0x0)/Pci(0x2,0x3)/Pci(0x0,0x0)/FvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/"
        "FvFile(462caa21-7614-4503-836e-8ab6f4662331)");
  CHECK(device_path_to_text(*hex_decode("02010c00d041030a00000000ffff0200")) == "PciRoot(0x0)");  // length 2 < 4
  CHECK(device_path_to_text(*hex_decode("02010c00d041030a00000000010106")) == "PciRoot(0x0)");    // cut header
  CHECK(device_path_to_text(*hex_decode("0101ff00")) == "");                                      // length past end
  CHECK(device_path_to_text(*hex_decode("05010500aa7fff0400")) == "Path(5,1,aa)");
  CHECK(device_path_to_text({}) == "");
}

TEST_CASE("HCRTM event sets PCR 0's start to 4") {
  LogBuilder b;
  b.add_text(0, ev::kEfiHcrtmEvent, "HCRTM");
  auto parsed = parse_boot_log(b.bytes());
  Bytes start(32, 0);
  start.back() = 4;
  auto d = crypto::digest(crypto::HashAlg::sha256, as_bytes("HCRTM"));
  start.insert(start.end(), d.begin(), d.end());
  CHECK(parsed.pcrs.at(crypto::HashAlg::sha256).at(0) == crypto::digest(crypto::HashAlg::sha256, start));
  CHECK(parsed.data["events"][1]["Event"] == "HCRTM");
}
