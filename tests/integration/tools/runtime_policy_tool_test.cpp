// keylime-policy create runtime: policies from the IMA samples, the create-runtime-policy samples
// (upstream's algorithm-selection matrix), a temporary root filesystem, and bad inputs; every
// generated policy is checked with the project's runtime policy schema and evaluated by the IMA core.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/evaluate.hpp"
#include "common/attest/policy/compiled_policy.hpp"
#include "common/attest/policy/policy_upload.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "integration/tools/tool_test_util.hpp"
#include "unit/ima/ima_test_util.hpp"

using namespace kl::tools_test;
using kl::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kCrp = "create-runtime-policy/";

// Runs `create runtime <args> -o <dir>/policy.json`; returns the parsed policy (null on failure).
struct Created {
  kl::testing::CommandResult run;
  std::string text;
  json policy;
};
Created create(const TempDir& dir, std::vector<std::string> args) {
  const std::string out = (dir.path() / "policy.json").string();
  std::error_code ec;
  fs::remove(out, ec);
  args.insert(args.begin(), {"create", "runtime"});
  args.insert(args.end(), {"-o", out});
  Created c{run_tool(args), "", nullptr};
  if (c.run.status == 0) {
    c.text = read_text(out);
    c.policy = json::parse(c.text);
  }
  return c;
}

kl::ima::ProcessResult evaluate(const std::string& list, const json& policy) {
  kl::ima::ProcessOptions o;
  o.bank = kl::crypto::HashAlg::sha1;
  o.policy = kl::policy::CompiledPolicy::compile(policy);
  return kl::ima::process_measurement_list(list, o, nullptr);
}

std::string sha256_hex(const std::string& s) {
  return kl::hex_encode(kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(s)));
}

}  // namespace

TEST_CASE("create runtime from the IMA sample list: upstream format, passes its own log, rejects an extra file") {
  TempDir dir;
  const std::string list_path = sample("ima/measurements.ima-sig.txt");
  auto c = create(dir, {"-m", list_path});
  INFO(c.run.output);
  REQUIRE(c.run.status == 0);
  CHECK_FALSE(kl::policy::schema_error(c.policy).has_value());
  // json.dumps layout and the schema's key order.
  CHECK(c.text.rfind("{\"meta\": {\"version\": 1, \"generator\": 3, \"timestamp\": \"", 0) == 0);
  CHECK(c.text.find("}, \"release\": 0, \"digests\": {\"/lib/modules/") != std::string::npos);
  CHECK(c.text.find("\"excludes\": [], \"keyrings\": {}, \"ima\": {\"ignored_keyrings\": [], \"log_hash_alg\": "
                    "\"sha1\", \"dm_policy\": null}, \"ima-buf\": {}, \"verification-keys\": \"\"}") != std::string::npos);
  REQUIRE(c.policy["digests"].size() == 3);
  CHECK(c.policy["digests"]["boot_aggregate"] ==
        json::array({"e4cb9f5709c88376b5fc3743cd88e76b9aae8f3d992d845678de5215edb31216"}));
  for (const auto& [path, digests] : c.policy["digests"].items()) CHECK(digests.size() == 1);

  // The verifier's upload check accepts the text as written.
  auto accepted = kl::policy::accept_runtime_policy(c.text, {});
  REQUIRE(std::holds_alternative<kl::policy::AcceptedPolicy>(accepted));
  CHECK(std::get<kl::policy::AcceptedPolicy>(accepted).generator == 3);

  const std::string list = read_text(list_path);
  auto good = evaluate(list, c.policy);
  CHECK(good.failure.event_ids().empty());

  std::string tampered = list;
  if (tampered.back() != '\n') tampered += '\n';
  tampered += kl::test_ima::make_ima_ng_line("/root/evil.sh", "#!/bin/sh\nrm -rf /\n") + "\n";
  auto bad = evaluate(tampered, c.policy);
  CHECK(bad.failure.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});

  // A known file with another digest is a hash mismatch.
  std::string changed = list + kl::test_ima::make_ima_ng_line("boot_aggregate", "other") + "\n";
  CHECK(evaluate(changed, c.policy).failure.event_ids() ==
        std::vector<std::string>{"ima.validation.ima-ng.runtime_policy_hash"});
}

TEST_CASE("create runtime: --show-legacy-allowlist prints boot_aggregate first") {
  TempDir dir;
  auto c = run_tool({"create", "runtime", "-m", sample("ima/measurements.ima-sig.txt"), "--show-legacy-allowlist",
                     "-o", (dir.path() / "al.txt").string()});
  REQUIRE(c.status == 0);
  const std::string text = read_text((dir.path() / "al.txt").string());
  CHECK(text.rfind("e4cb9f5709c88376b5fc3743cd88e76b9aae8f3d992d845678de5215edb31216  boot_aggregate\n", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
}

TEST_CASE("create runtime: create-runtime-policy samples, one algorithm per input") {
  TempDir dir;
  for (std::string algo : {"sha1", "sha256", "sha384", "sha512", "sm3_256"}) {
    INFO(algo);
    auto c = create(dir, {"-v", "-m", sample(kCrp + "ima-log-" + algo)});
    INFO(c.run.output);
    REQUIRE(c.run.status == 0);
    CHECK(c.run.output.find("Using digest algorithm '" + algo + "' obtained from the IMA measurement list") !=
          std::string::npos);
    CHECK_FALSE(kl::policy::schema_error(c.policy).has_value());
    // "/data" gets the digest of the log's second line.
    const std::string log = read_text(sample(kCrp + "ima-log-" + algo));
    const std::string line2 = log.substr(log.find('\n') + 1);
    const auto colon = line2.find(':');
    CHECK(c.policy["digests"]["/data"] == json::array({line2.substr(colon + 1, line2.find(' ', colon) - colon - 1)}));
    if (algo != "sm3_256") {  // (upstream's sm3 sample log carries the SHA-256 digest of the data)
      const std::string al = read_text(sample(kCrp + "allowlist-" + algo));
      CHECK(c.policy["digests"]["/data"] == json::array({al.substr(0, al.find(' '))}));
    }
    CHECK(c.policy["digests"].contains("boot_aggregate"));
  }
}

TEST_CASE("create runtime: --rootfs of the sample tree equals the expected policy file") {
  TempDir dir;
  // policy-sm3_256 is upstream's policy for rootfs/ hashed with SM3.
  auto c = create(dir, {"--algo", "sm3_256", "--rootfs", sample(kCrp + "rootfs")});
  INFO(c.run.output);
  REQUIRE(c.run.status == 0);
  json expected = read_json(sample(kCrp + "policy-sm3_256"));
  json got = c.policy;
  REQUIRE(got["meta"].contains("timestamp"));
  got["meta"].erase("timestamp");
  expected["meta"].erase("timestamp");
  CHECK(got == expected);

  auto s256 = create(dir, {"--rootfs", sample(kCrp + "rootfs")});
  REQUIRE(s256.run.status == 0);
  CHECK(s256.policy["digests"] ==
        json{{"/rootfs_data", {sha256_hex(read_text(sample(kCrp + "rootfs/rootfs_data")))}}});
}

TEST_CASE("create runtime: digest algorithm priority --algo > base policy > allowlist > IMA list") {
  TempDir dir;
  const std::string rootfs = sample(kCrp + "rootfs");
  for (std::string algo : {"sha1", "sha384", "sha512"}) {
    INFO(algo);
    const std::string bp = sample(kCrp + "policy-" + algo), al = sample(kCrp + "allowlist-" + algo),
                      il = sample(kCrp + "ima-log-" + algo);
    auto from_allowlist = create(dir, {"-v", "-a", al, "-m", il, "--rootfs", rootfs});
    CHECK(from_allowlist.run.output.find("Using digest algorithm '" + algo + "' obtained from the allowlist") !=
          std::string::npos);
    REQUIRE(from_allowlist.run.status == 0);
    // Digests of every source merged; rootfs hashed with the chosen algorithm.
    const auto& d = from_allowlist.policy["digests"];
    CHECK(d.contains("data"));
    CHECK(d.contains("/data"));
    CHECK(d.contains("boot_aggregate"));
    REQUIRE(d.contains("/rootfs_data"));
    CHECK(d["/rootfs_data"][0].get<std::string>().size() == kl::crypto::digest_size(*kl::crypto::hash_from_name(algo)) * 2);

    auto from_base = create(dir, {"-v", "-p", bp, "-a", al, "-m", il});
    CHECK(from_base.run.output.find("Using digest algorithm '" + algo + "' obtained from the base policy") !=
          std::string::npos);
    REQUIRE(from_base.run.status == 0);
    CHECK(from_base.policy["digests"].contains("/base_policy_data"));

    auto from_opt = create(dir, {"-v", "--algo", algo, "-p", bp, "--rootfs", rootfs});
    CHECK(from_opt.run.output.find("Using digest algorithm '" + algo + "' obtained from the --algo option") !=
          std::string::npos);
    CHECK(from_opt.run.status == 0);
  }
  SECTION("sha256 vs sm3_256: the IMA list decides the ambiguous 64-hex inputs") {
    for (std::string algo : {"sha256", "sm3_256"}) {
      auto c = create(dir, {"-v", "-p", sample(kCrp + "policy-sha256"), "-a", sample(kCrp + "allowlist-sm3_256"), "-m",
                            sample(kCrp + "ima-log-" + algo)});
      CHECK(c.run.status == 0);
      CHECK(c.run.output.find("Using digest algorithm '" + algo + "' obtained from the IMA measurement list") !=
            std::string::npos);
    }
    auto c = create(dir, {"-p", sample(kCrp + "policy-sha256"), "-m", sample(kCrp + "ima-log-sha1")});
    CHECK(c.run.status == 1);
    CHECK(c.run.output.find("The digest algorithm in the IMA measurement list does not match the previously set "
                            "'sha256_or_sm3_256' algorithm") != std::string::npos);
  }
}

TEST_CASE("create runtime: mixed or unknown digest algorithms abort") {
  TempDir dir;
  const std::vector<std::string> base = {"--algo", "sha1", "--rootfs", sample(kCrp + "rootfs")};
  for (std::string algo : {"sha256", "sha384", "sha512", "sm3_256"}) {
    for (auto [opt, file, source] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"-p", "policy-", "base policy"}, {"-a", "allowlist-", "allowlist"}, {"-m", "ima-log-", "IMA measurement list"}}) {
      auto args = base;
      args.insert(args.end(), {opt, sample(kCrp + file + algo)});
      auto c = create(dir, args);
      INFO(algo << " " << source << ": " << c.run.output);
      CHECK(c.run.status == 1);
      CHECK(c.run.output.find("The digest algorithm in the " + source +
                              " does not match the previously set 'sha1' algorithm") != std::string::npos);
      CHECK_FALSE(fs::exists(dir.path() / "policy.json"));
    }
  }
  for (auto [opt, file, source] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"-p", "policy-unknown", "base policy"}, {"-a", "allowlist-unknown", "allowlist"},
           {"-m", "ima-log-unknown", "IMA measurement list"}}) {
    auto c = create(dir, {opt, sample(kCrp + file)});
    INFO(c.run.output);
    CHECK(c.run.status == 1);
    CHECK(c.run.output.find("Invalid digest algorithm found in the " + source) != std::string::npos);
  }
}

TEST_CASE("create runtime: a temporary root filesystem is hashed, skipped paths and excludes applied") {
  TempDir dir;
  const fs::path root = dir.path() / "root";
  for (const char* d : {"excluded", "included/nested_excluded", "var/lib", "sub dir"}) fs::create_directories(root / d);
  for (const char* f : {"a", "included/b", "excluded/c", "included/nested_excluded/d", "var/lib/e", "sub dir/f g"})
    write_text((root / f).string(), std::string("some content in root/") + f);
  write_text((dir.path() / "outside").string(), "outside");
  fs::create_symlink(root / "a", root / "sa");
  fs::create_symlink(dir.path() / "outside", root / "sc");
  write_text((root / "not-root-owned").string(), "user file");
  REQUIRE(::chown((root / "not-root-owned").c_str(), 1000, 1000) == 0);
  REQUIRE(::mkfifo((root / "fifo").c_str(), 0600) == 0);

  const std::string excl = (dir.path() / "excludes").string();
  write_text(excl, "/included/.*\n\n  boot_aggregate  \n");
  auto c = create(dir, {"--rootfs", root.string(), "-s",
                        (root / "excluded").string() + "," + (root / "included/nested_excluded").string() + ",/elsewhere",
                        "-e", excl});
  INFO(c.run.output);
  REQUIRE(c.run.status == 0);
  CHECK(c.run.output.find("Ignoring directory '/elsewhere'") != std::string::npos);
  // Upstream's own expected digests for /a and /included/b (test_rootfs_with_symbolic_links).
  CHECK(c.policy["digests"] ==
        json{{"/a", {"f86309c6fecb020efe59a73666162b69e43035da434c7c92df293553810e9907"}},
             {"/included/b", {"5b5b4bcb3b77ca3017d9f3ff9424f777389116c70e4b57c88a3ee857182a3d43"}},
             {"/sub_dir/f_g", {sha256_hex("some content in root/sub dir/f g")}}});
  CHECK(c.policy["excludes"] == json::array({"/included/.*", "boot_aggregate"}));

  // The policy evaluated by the core: excluded paths pass whatever their digest, others must match.
  using kl::test_ima::make_ima_ng_line;
  const std::string ok = make_ima_ng_line("/a", "some content in root/a") + "\n" +
                         make_ima_ng_line("/included/anything", "whatever") + "\n";
  CHECK(evaluate(ok, c.policy).failure.event_ids().empty());
  CHECK(evaluate(make_ima_ng_line("/a", "changed") + "\n", c.policy).failure.event_ids() ==
        std::vector<std::string>{"ima.validation.ima-ng.runtime_policy_hash"});
  CHECK(evaluate(make_ima_ng_line("/excluded/c", "some content in root/excluded/c") + "\n", c.policy)
            .failure.event_ids() == std::vector<std::string>{"ima.validation.ima-ng.not_in_allowlist"});

  SECTION("sha1 digests, and a skip path containing the rootfs skips everything") {
    auto s1 = create(dir, {"--algo", "sha1", "--rootfs", root.string()});
    REQUIRE(s1.run.status == 0);
    CHECK(s1.policy["digests"]["/a"] ==
          json::array({kl::hex_encode(kl::crypto::digest(kl::crypto::HashAlg::sha1, kl::as_bytes("some content in root/a")))}));
    CHECK(s1.policy["digests"].contains("/excluded/c"));
    CHECK_FALSE(s1.policy["digests"].contains("/var/lib/e"));  // base exclude /var
    auto all = create(dir, {"--rootfs", root.string(), "-s", dir.path().string()});
    REQUIRE(all.run.status == 0);
    CHECK(all.policy["digests"].empty());
  }
}

TEST_CASE("create runtime: base policy, keyrings, ima-buf and verification keys") {
  TempDir dir;
  SECTION("base policy without known fields gives the empty policy") {
    write_text((dir.path() / "bp").string(), R"({"valid": "json", "invalid": "policy"})");
    auto c = create(dir, {"-p", (dir.path() / "bp").string()});
    REQUIRE(c.run.status == 0);
    json expected = kl::policy::to_json(kl::policy::empty_runtime_policy());
    expected["meta"]["generator"] = 3;
    c.policy["meta"].erase("timestamp");
    CHECK(c.policy == expected);
  }
  SECTION("base policy fields are merged and de-duplicated") {
    auto c = create(dir, {"-p", sample("ima/runtime-policy-with-excludes.json"), "-m",
                          sample("ima/measurements.ima-sig.txt")});
    INFO(c.run.output);
    REQUIRE(c.run.status == 0);
    const json base = read_json(sample("ima/runtime-policy-with-excludes.json"));
    CHECK(c.policy["excludes"].size() == base["excludes"].size());
    for (const auto& [path, digests] : base["digests"].items()) CHECK(c.policy["digests"][path] == digests);
  }
  SECTION("keyrings from ima-buf entries, ignored keyrings") {
    const std::string list = (dir.path() / "list").string();
    const std::string first = read_text(sample("ima/measurements.ima-sig.txt"));
    write_text(list, first.substr(0, first.find('\n') + 1) + read_text(sample("ima/keyrings.ima-buf.txt")));
    auto c = create(dir, {"-m", list, "-k"});
    INFO(c.run.output);
    REQUIRE(c.run.status == 0);
    CHECK(c.policy["keyrings"] ==
          json{{".ima", {"a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a"}}});
    CHECK(c.policy["ima-buf"].empty());
    auto ignored = create(dir, {"-m", list, "-k", "--ignored-keyrings", ".ima"});
    REQUIRE(ignored.run.status == 0);
    CHECK(ignored.policy["keyrings"].empty());
    CHECK(ignored.policy["ima"]["ignored_keyrings"] == json::array({".ima"}));
    // The generated keyring entry accepts the sample's ima-buf key entry.
    CHECK(evaluate(read_text(list), c.policy).failure.event_ids().empty());
  }
  SECTION("verification keys make signed entries pass without digests") {
    const std::string sigs = read_text(sample("ima/signatures.ima-sig.txt"));
    auto without = create(dir, {});
    REQUIRE(without.run.status == 0);
    CHECK_FALSE(evaluate(sigs, without.policy).failure.event_ids().empty());
    auto c = create(dir, {"--add-ima-signature-verification-key", sample("ima/rsa2048pub.pem"),
                          "--add-ima-signature-verification-key", sample("ima/secp256k1.pem")});
    INFO(c.run.output);
    REQUIRE(c.run.status == 0);
    CHECK_FALSE(kl::policy::schema_error(c.policy).has_value());
    const std::string vk = c.policy["verification-keys"].get<std::string>();
    CHECK(vk.rfind("{\"pubkeys\": [", 0) == 0);
    CHECK(json::parse(vk)["keyids"].size() == 2);
    CHECK(evaluate(sigs, c.policy).failure.event_ids().empty());
    auto bad_key = create(dir, {"--add-ima-signature-verification-key", sample(kCrp + "allowlist-sha1")});
    CHECK(bad_key.run.output.find("is not a file with a key") != std::string::npos);
  }
}

TEST_CASE("create runtime: bad inputs exit non-zero with a clear message and write nothing") {
  TempDir dir;
  const fs::path out = dir.path() / "policy.json";
  auto expect_fail = [&](std::vector<std::string> args, const std::string& message, int status = 1) {
    auto c = create(dir, std::move(args));
    INFO(c.run.output);
    CHECK(c.run.status == status);
    CHECK(c.run.output.find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  };
  const std::string excl = (dir.path() / "excl").string();
  write_text(excl, "boot_aggregate\nboot.aggreg*$\n*\nfoobar.so(.*)?\n");
  expect_fail({"-e", excl}, "Bad IMA exclude list rule '*': Invalid regex");
  write_text(excl, "/usr/(lib|bin\n");
  expect_fail({"-e", excl}, "Bad IMA exclude list rule '/usr/(lib|bin'");
  expect_fail({"-m", "/nonexistent/ima/list"}, "The IMA measurement list file '/nonexistent/ima/list' does not seem to exist");
  expect_fail({"-a", "/nonexistent/allowlist"}, "An error occurred while accessing the allowlist: [Errno 2]");
  expect_fail({"-e", "/nonexistent/excludes"}, "[Errno 2] No such file or directory: '/nonexistent/excludes'");
  expect_fail({"-p", sample("sign-runtime-policy/runtime-policy-bogus.json")}, "An error occurred while parsing a JSON object");
  write_text((dir.path() / "bp").string(), R"({"valid": "json", "verification-keys": "invalid"})");
  expect_fail({"-p", (dir.path() / "bp").string()}, "Could not convert the provided base policy to a valid runtime policy");
  const std::string garbage = (dir.path() / "garbage").string();
  write_text(garbage, "\x01\x02 not an IMA log\nfoo bar baz\n");
  expect_fail({"-m", garbage}, "Invalid digest algorithm found in the IMA measurement list");
  expect_fail({"--rootfs", "/nonexistent/rootfs"}, "is not a directory");
  expect_fail({"--algo", "md5"}, "argument --algo: invalid choice: 'md5'", 2);
  expect_fail({"--bogus-option"}, "unrecognized arguments: --bogus-option", 2);
  expect_fail({"-a"}, "argument -a/--allowlist: expected one argument", 2);
}

TEST_CASE("keylime-policy --help on every command") {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--help"}, {"create", "--help"}, {"sign", "-h"}, {"create", "runtime", "--help"},
           {"create", "measured-boot", "--help"}, {"sign", "runtime", "--help"}}) {
    auto r = run_tool(args);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.rfind("usage: keylime-policy", 0) == 0);
  }
  CHECK(run_tool({"create", "runtime", "--help"}).output.find("--ima-measurement-list [FILE]") != std::string::npos);
  CHECK(run_tool({"create", "measured-boot", "-h"}).output.find("--eventlog-file FILE") != std::string::npos);
  CHECK(run_tool({"sign", "runtime", "-h"}).output.find("--runtime-policy FILE") != std::string::npos);
  CHECK(run_tool({}).status == 0);
  auto bad = run_tool({"destroy"});
  CHECK(bad.status == 2);
  CHECK(bad.output.find("invalid choice: 'destroy'") != std::string::npos);
  CHECK(run_tool({"create"}).status == 2);
  CHECK(run_tool({"create", "nothing"}).status == 2);
}
