// keylime-policy create runtime --ramdisk-dir: initrds built here (early microcode cpio + main
// archive, compressed with gzip / xz / zstd or plain) are read without unpacking to disk.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/evaluate.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "integration/tools/tool_test_util.hpp"
#include "tools/policy/initrd_digests.hpp"
#include "unit/ima/ima_test_util.hpp"

using namespace kl::tools_test;
using kl::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string hex8(std::uint32_t v) {
  char b[9];
  std::snprintf(b, sizeof b, "%08X", v);
  return b;
}

std::string pad4(std::string s) {
  while (s.size() % 4) s += '\0';
  return s;
}

std::string cpio_entry(const std::string& name, std::uint32_t mode, const std::string& data, std::uint32_t ino = 1,
                       std::uint32_t nlink = 1) {
  std::string h = "070701" + hex8(ino) + hex8(mode) + hex8(0) + hex8(0) + hex8(nlink) + hex8(0) +
                  hex8(static_cast<std::uint32_t>(data.size())) + hex8(0) + hex8(0) + hex8(0) + hex8(0) +
                  hex8(static_cast<std::uint32_t>(name.size() + 1)) + hex8(0);
  return pad4(h + name + '\0') + pad4(data);
}

std::string trailer() { return cpio_entry("TRAILER!!!", 0, "", 0); }

std::string main_archive() {
  return cpio_entry(".", 040755, "", 2) + cpio_entry("usr/bin", 040755, "", 3) +
         cpio_entry("usr/bin/foo", 0100755, "foo", 4) + cpio_entry("usr/lib/with space", 0100644, "sp", 5) +
         cpio_entry("bin/a", 0100644, "", 7, 2) + cpio_entry("bin/b", 0100644, "linked", 7, 2) +
         cpio_entry("usr/bin/sym", 0120777, "foo", 8) + cpio_entry("../escape", 0100644, "x", 9) + trailer();
}

std::string early_microcode() {
  std::string a = cpio_entry("kernel/x86/microcode/GenuineIntel.bin", 0100644, "ucode", 1) + trailer();
  return a + std::string(512 - a.size() % 512, '\0');
}

std::string sha256(const std::string& s) {
  return kl::hex_encode(kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(s)));
}

}  // namespace

TEST_CASE("create runtime --ramdisk-dir: gzip, xz, zstd and plain initrds") {
  TempDir dir;
  const std::string raw = (dir.path() / "main.cpio").string();
  write_text(raw, main_archive());
  const json expected = {{"/bin/a", {sha256("linked")}}, {"/bin/b", {sha256("linked")}},
                         {"/usr/bin/foo", {sha256("foo")}}, {"/usr/lib/with_space", {sha256("sp")}}};
  for (const auto& [kind, command] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", "gzip -c"}, {"xz", "xz -c"}, {"zstd", "zstd -q -c"}, {"plain", "cat"}}) {
    INFO(kind);
    const fs::path boot = dir.path() / kind;
    fs::create_directories(boot);
    const std::string compressed = (dir.path() / (kind + ".bin")).string();
    REQUIRE(kl::testing::run_command({"sh", "-c", command + " < '" + raw + "' > '" + compressed + "'"}).status == 0);
    write_text((boot / "initramfs-6.1.0.img").string(),
               (kind == "plain" ? std::string() : early_microcode()) + read_text(compressed));
    write_text((boot / "vmlinuz-6.1.0").string(), "not an initrd");
    const std::string out = (dir.path() / "policy.json").string();
    auto r = run_tool({"create", "runtime", "--ramdisk-dir", boot.string(), "-o", out});
    INFO(r.output);
    REQUIRE(r.status == 0);
    const json policy = read_json(out);
    CHECK(policy["digests"] == expected);

    // The core accepts the initrd's files under that policy and rejects a changed one.
    kl::ima::ProcessOptions o;
    o.policy = kl::policy::CompiledPolicy::compile(policy);
    CHECK(kl::ima::process_measurement_list(kl::test_ima::make_ima_ng_line("/usr/bin/foo", "foo") + "\n", o, nullptr)
              .failure.event_ids()
              .empty());
    CHECK(kl::ima::process_measurement_list(kl::test_ima::make_ima_ng_line("/usr/bin/foo", "evil") + "\n", o, nullptr)
              .failure.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.runtime_policy_hash"});
  }
  SECTION("sha1 via --algo") {
    auto r = run_tool({"create", "runtime", "--algo", "sha1", "--ramdisk-dir", (dir.path() / "gzip").string(), "-o",
                       (dir.path() / "p1.json").string()});
    REQUIRE(r.status == 0);
    CHECK(read_json((dir.path() / "p1.json").string())["digests"]["/usr/bin/foo"] ==
          json::array({kl::hex_encode(kl::crypto::digest(kl::crypto::HashAlg::sha1, kl::as_bytes("foo")))}));
  }
}

TEST_CASE("initrd pieces: early cpio skipping, format detection, malformed archives") {
  const std::string early = early_microcode();
  const std::string both = early + "\x1f\x8b rest";
  CHECK(kl::tools::skip_early_cpio(kl::as_bytes(both)) == early.size());
  CHECK(kl::tools::skip_early_cpio(kl::as_bytes(main_archive())) == 0);  // only one archive: it is the main one
  CHECK(kl::tools::skip_early_cpio(kl::as_bytes("\x28\xb5\x2f\xfd")) == 0);
  CHECK(kl::tools::detect_compression(kl::as_bytes(both.substr(early.size()))) == "gzip");
  CHECK(kl::tools::detect_compression(kl::as_bytes(main_archive())) == "cpio");
  CHECK(kl::tools::detect_compression(kl::as_bytes("????")).empty());
  const std::string a = main_archive();
  CHECK_THROWS_AS(kl::tools::read_cpio(kl::as_bytes(a.substr(0, a.size() / 2))), std::invalid_argument);
  CHECK_THROWS_AS(kl::tools::read_cpio(kl::as_bytes("070701zzzz")), std::invalid_argument);
  auto files = kl::tools::read_cpio(kl::as_bytes(a));
  REQUIRE(files.size() == 4);
  CHECK(files[0].path == "/usr/bin/foo");

  TempDir dir;
  write_text((dir.path() / "initrd.img").string(), early + "\x1f\x8b\x08 this is not gzip data");
  auto r = run_tool({"create", "runtime", "--ramdisk-dir", dir.path().string(), "-o", (dir.path() / "p.json").string()});
  CHECK(r.status == 1);
  CHECK(r.output.find("Unable to process file") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "p.json"));
  auto missing = run_tool({"create", "runtime", "--ramdisk-dir", "/nonexistent/boot"});
  CHECK(missing.status == 1);
  CHECK(missing.output.find("cannot read directory") != std::string::npos);
}
