// keylime-policy create measured-boot: reference states from the measured-boot sample logs, in
// upstream's key order, accepted by the core's "example" policy for their own log only.
#include <catch2/catch.hpp>

#include <filesystem>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/mb/boot_log.hpp"
#include "common/attest/mb/policy.hpp"
#include "integration/tools/tool_test_util.hpp"

using namespace kl::tools_test;
using kl::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::set<std::uint32_t> kAllPcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

json parsed_log(const std::string& file) {
  const std::string bytes = read_text(sample("mb/" + file));
  return kl::mb::parse_boot_log(kl::as_bytes(bytes)).data;
}

json stored_policy(const std::string& name) { return read_json(std::string(KL_SOURCE_DIR) + "/policies/mb/" + name); }

}  // namespace

TEST_CASE("create measured-boot from the Secure Boot log") {
  TempDir dir;
  const std::string out = (dir.path() / "refstate.json").string();
  auto r = run_tool({"create", "measured-boot", "-e", sample("mb/binary_bios_measurements-secureboot"), "-o", out});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::string text = read_text(out);
  // json.dump layout and the key order of upstream's dict literals.
  CHECK(text.rfind("{\"has_secureboot\": true, \"scrtm_and_bios\": [{\"scrtm\": {\"sha256\": \"0x", 0) == 0);
  const auto pos = [&](const std::string& k) { return text.find("\"" + k + "\": "); };
  CHECK(pos("platform_firmware") < pos("pk"));
  CHECK(pos("pk") < pos("kek"));
  CHECK(pos("kek") < pos("db"));
  CHECK(pos("dbx") < pos("vendor_db"));
  CHECK(pos("vendor_db") < pos("mokdig"));
  CHECK(pos("mokxdig") < pos("kernels"));
  CHECK(pos("kernel_authcode_sha256") < pos("shim_authcode_sha256"));
  CHECK(pos("shim_authcode_sha256") < pos("grub_authcode_sha256"));
  CHECK(text.find("{\"SignatureOwner\": ") != std::string::npos);
  CHECK(text.back() == '}');

  const json refstate = json::parse(text);
  CHECK(refstate == stored_policy("rhel9-ovmf-secureboot.json"));
  // Every field of upstream's (older) sample reference state is there, with the same JSON types.
  const json sample_ref = read_json(sample("mb/example_reference_state.json"));
  for (const auto& [k, v] : sample_ref.items()) {
    INFO(k);
    REQUIRE(refstate.contains(k));
    CHECK(refstate[k].type() == v.type());
  }

  // The example policy accepts the log it was made from, and rejects another machine's log.
  CHECK_FALSE(kl::mb::evaluate_boot_log("example", text, parsed_log("binary_bios_measurements-secureboot"), kAllPcrs).failed());
  const std::string b64 = read_text(sample("mb/mb_log.b64"));
  std::string one_line;
  for (char c : b64)
    if (c != '\n' && c != '\r') one_line += c;
  const auto other = kl::mb::bootlog_parse(one_line, kl::crypto::HashAlg::sha256);
  REQUIRE(other.parsed);
  auto f = kl::mb::evaluate_boot_log("example", text, other.parsed->data, kAllPcrs);
  CHECK(f.event_ids() == std::vector<std::string>{"measured_boot.policy_example"});

  SECTION("stdout by default; -i on a Secure Boot log warns and is ignored") {
    auto s = run_tool({"create", "measured-boot", "-i", "-e", sample("mb/binary_bios_measurements-secureboot")});
    CHECK(s.status == 0);
    CHECK(s.output.find("-i/--without-secureboot was set") != std::string::npos);
    CHECK(s.output.find(text) != std::string::npos);
  }
}

TEST_CASE("create measured-boot from the log without Secure Boot needs -i") {
  TempDir dir;
  const std::string out = (dir.path() / "refstate.json").string();
  auto no_i = run_tool({"create", "measured-boot", "-e", sample("mb/binary_bios_measurements"), "-o", out});
  CHECK(no_i.status == 1);
  CHECK(no_i.output.find("Provided eventlog has SecureBoot disabled, but -i flag was not set") != std::string::npos);
  CHECK_FALSE(fs::exists(out));

  auto r = run_tool({"create", "measured-boot", "--without-secureboot", "--eventlog-file",
                     sample("mb/binary_bios_measurements"), "--output", out});
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json refstate = read_json(out);
  CHECK(refstate == stored_policy("fedora41-no-secureboot.json"));
  CHECK(refstate["has_secureboot"] == false);
  REQUIRE(refstate["kernels"].size() == 1);
  CHECK(refstate["kernels"][0].contains("vmlinuz_plain_sha256"));
  CHECK_FALSE(refstate["kernels"][0].contains("kernel_authcode_sha256"));
  const std::string text = read_text(out);
  CHECK(text.find("\"initrd_plain_sha256\": ") < text.find("\"vmlinuz_plain_sha256\": "));
  CHECK(text.find("\"vmlinuz_plain_sha256\": ") < text.find("\"kernel_cmdline\": "));
}

TEST_CASE("create measured-boot: bad logs exit non-zero with a clear message") {
  TempDir dir;
  const std::string out = (dir.path() / "refstate.json").string();
  for (const auto& [file, message] : std::vector<std::pair<std::string, std::string>>{
           {sample("mb/binary_bios_measurements-bogus"), "Parsing of binary boot measurements"},
           {sample("mb/binary_bios_measurements-empty"), "Parsing of binary boot measurements"},
           {"/nonexistent/binary_bios_measurements", "[Errno 2] No such file or directory"},
           {sample("mb/mb_log.b64"), "Parsing of binary boot measurements"}}) {
    auto r = run_tool({"create", "measured-boot", "-e", file, "-o", out});
    INFO(file << ": " << r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  // A truncated log is malformed too.
  const std::string whole = read_text(sample("mb/binary_bios_measurements-secureboot"));
  write_text((dir.path() / "cut").string(), whole.substr(0, whole.size() / 2 + 3));
  auto cut = run_tool({"create", "measured-boot", "-e", (dir.path() / "cut").string(), "-o", out});
  CHECK(cut.status == 1);
  CHECK(cut.output.find("Parsing of binary boot measurements") != std::string::npos);

  auto missing = run_tool({"create", "measured-boot"});
  CHECK(missing.status == 2);
  CHECK(missing.output.find("the following arguments are required: -e/--eventlog-file") != std::string::npos);
}
