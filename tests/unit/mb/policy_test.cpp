#include <catch2/catch.hpp>

#include <fstream>

#include "common/attest/mb/boot_log.hpp"
#include "common/attest/mb/policy.hpp"
#include "common/attest/mb/refstate.hpp"
#include "common/attest/parse_error.hpp"
#include "unit/mb/sample_logs.hpp"

using namespace kl;
using namespace kl::mb;
using namespace kl::mb::testing;
using nlohmann::json;

namespace {

const std::set<std::uint32_t> kAllPcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

json policy_file(const std::string& name) {
  return json::parse(read_text(std::string(KL_SOURCE_DIR) + "/policies/mb/" + name));
}

ParsedBootLog secureboot_log() { return parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements-secureboot")); }

std::string reason_of(const Failure& f) {
  REQUIRE(f.events().size() == 1);
  return f.events()[0].context["reason"].get<std::string>();
}

json& first_event(json& parsed, const std::string& type, const std::string& unicode_name = "") {
  for (auto& e : parsed["events"])
    if (e["EventType"] == type && (unicode_name.empty() || e["Event"].value("UnicodeName", "") == unicode_name))
      return e;
  throw std::runtime_error("no such event");
}

}  // namespace

TEST_CASE("policy registry: names, relevant PCRs, PCRs to replay") {
  CHECK(policy_names() == std::vector<std::string>{"accept-all", "reject-all", "example"});
  REQUIRE(find_policy("example"));
  CHECK(find_policy("example")->relevant_pcrs() == std::set<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14});
  CHECK(find_policy("accept-all")->relevant_pcrs().empty());
  CHECK(find_policy("nope") == nullptr);
  CHECK(mb_pcrs_to_check("example") == std::set<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14});
  CHECK(mb_pcrs_to_check("accept-all") == measured_boot_pcrs());
  CHECK(mb_pcrs_to_check("unknown") == measured_boot_pcrs());
  CHECK(measured_boot_pcrs().count(10) == 0);
  CHECK(refstate_is_valid("{}"));
  CHECK_FALSE(refstate_is_valid(""));
  CHECK_FALSE(refstate_is_valid("null"));
  CHECK_FALSE(refstate_is_valid("{bad"));
}

TEST_CASE("generated reference states equal the stored policies/mb files") {
  auto sb = secureboot_log();
  CHECK(create_refstate(sb.data) == policy_file("rhel9-ovmf-secureboot.json"));
  auto centos = parse_boot_log(sample_bytes(valid_samples()[2]));
  CHECK(create_refstate(centos.data) == policy_file("centos-ovmf-secureboot.json"));
  auto nosb = parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements"));
  CHECK_THROWS_WITH(create_refstate(nosb.data), Catch::Contains("SecureBoot disabled"));
  RefstateOptions i;
  i.allow_no_secureboot = true;
  auto ref = create_refstate(nosb.data, i);
  CHECK(ref == policy_file("fedora41-no-secureboot.json"));
  CHECK(ref["has_secureboot"] == false);
  CHECK(ref["kernels"][0].contains("vmlinuz_plain_sha256"));
  CHECK_FALSE(ref["kernels"][0].contains("kernel_authcode_sha256"));
  CHECK_THROWS_WITH(create_refstate(json{{"events", json::array()}}), Catch::Contains("No events"));
  // -i on a Secure Boot log is ignored, as upstream.
  CHECK(create_refstate(sb.data, i)["has_secureboot"] == true);
}

TEST_CASE("sample verdicts under the example policy") {
  SECTION("secure-boot log against its reference state: pass") {
    auto f = evaluate_boot_log("example", policy_file("rhel9-ovmf-secureboot.json").dump(), secureboot_log().data, kAllPcrs);
    CHECK_FALSE(f.failed());
  }
  SECTION("keylime issue #1153 log against its reference state: pass") {
    auto log = parse_boot_log(sample_bytes(valid_samples()[2]));
    auto f = evaluate_boot_log("example", policy_file("centos-ovmf-secureboot.json").dump(), log.data, kAllPcrs);
    CHECK_FALSE(f.failed());
  }
  SECTION("non-secure-boot log: fails on its second PCR 0 EV_NO_ACTION, as upstream") {
    auto log = parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements"));
    auto f = evaluate_boot_log("example", policy_file("fedora41-no-secureboot.json").dump(), log.data, kAllPcrs);
    REQUIRE(f.event_ids() == std::vector<std::string>{"measured_boot.policy_example"});
    CHECK_THAT(reason_of(f), Catch::StartsWith("{'EventNum': 1, 'PCRIndex': 0, 'EventType': 'EV_NO_ACTION'") &&
                                 Catch::EndsWith("test was already run once"));
    CHECK(f.recoverable());
  }
  SECTION("upstream's Ubuntu example reference state does not fit the RHEL log") {
    auto ref = read_text(mb_dir() + "example_reference_state.json");
    auto f = evaluate_boot_log("example", ref, secureboot_log().data, kAllPcrs);
    REQUIRE(f.event_ids() == std::vector<std::string>{"measured_boot.policy_example"});
    const auto& ctx = f.events()[0].context;
    CHECK(ctx["context"] == "Boot attestation failed");
    CHECK(ctx["policy"] == "example");
    CHECK_THAT(ctx["refstate"].get<std::string>(), Catch::StartsWith("{'scrtm_and_bios': [{'scrtm': {'sha256': '0x96a2"));
    // The first event the refstate rejects is the PK.
    CHECK_THAT(reason_of(f), Catch::Contains("'UnicodeName': 'PK'"));
  }
}

TEST_CASE("tampered evidence fails with measured_boot.policy_example and a precise reason") {
  const std::string ref = policy_file("rhel9-ovmf-secureboot.json").dump();
  auto parsed = secureboot_log().data;

  SECTION("a changed kernel digest") {
    int n = 0;
    for (auto& e : parsed["events"])
      if (e["EventType"] == "EV_EFI_BOOT_SERVICES_APPLICATION" && ++n == 3) e["Digests"][0]["Digest"] = std::string(64, 'a');
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::StartsWith("[bsas [[2] has no digest approved by {'sha256': {'219b8b53"));
  }
  SECTION("a dbx entry removed") {
    auto& keys = first_event(parsed, "EV_EFI_VARIABLE_DRIVER_CONFIG", "dbx")["Event"]["VariableData"][0]["Keys"];
    std::string removed = keys[5]["SignatureData"];
    keys.erase(5);
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::Contains("lacks ('SignatureOwner', 'SignatureData') combinations") &&
                                 Catch::Contains(removed));
  }
  SECTION("Secure Boot disabled in the binary log") {
    auto bytes = read_bytes(mb_dir() + "binary_bios_measurements-secureboot");
    auto log = parse_event_log(bytes);
    const LogEvent* sbvar = nullptr;
    for (const auto& e : log.events)
      if (e.type == ev::kEfiVariableDriverConfig && e.data.size() == 53) sbvar = &e;  // SecureBoot, 1 data byte
    REQUIRE(sbvar);
    bytes[sbvar->offset + sbvar->data.size() + 4 + 4 + 4 + 2 + 32 + 4 - 1] = 0;  // the variable's value byte
    auto tampered = parse_boot_log(bytes);
    auto f = evaluate_boot_log("example", ref, tampered.data, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::EndsWith("VariableData Enabled is not 'Yes'"));
  }
  SECTION("a changed kernel command line") {
    for (auto& e : parsed["events"])
      if (e["EventType"] == "EV_IPL" && e["PCRIndex"] == 8 &&
          e["Event"]["String"].get<std::string>().rfind("kernel_cmdline: ", 0) == 0)
        e["Event"]["String"] = e["Event"]["String"].get<std::string>() + " init=/bin/sh";
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::StartsWith("[kernel_cmdlines [0] does not match kernel_cmdline: \\(hd0,gpt2\\)"));
  }
  SECTION("an unexpected event type") {
    parsed["events"].push_back({{"EventNum", 999}, {"PCRIndex", 3}, {"EventType", "EV_IPL"}, {"Event", {{"String", "x"}}}});
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::EndsWith("has unexpected ('PCRIndex', 'EventType') combination (3, 'EV_IPL')"));
  }
  SECTION("a second PK variable") {
    parsed["events"].push_back(first_event(parsed, "EV_EFI_VARIABLE_DRIVER_CONFIG", "PK"));
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::EndsWith("VariableData test was already run once"));
  }
  SECTION("firmware blob changed") {
    first_event(parsed, "EV_EFI_PLATFORM_FIRMWARE_BLOB")["Digests"][0]["Digest"] = std::string(64, '0');
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::Contains("platform_firmware_blobs [0] has no digest approved by"));
  }
  SECTION("separator with a wrong digest") {
    first_event(parsed, "EV_SEPARATOR")["Digests"][0]["Digest"] = std::string(64, '1');
    auto f = evaluate_boot_log("example", ref, parsed, kAllPcrs);
    CHECK_THAT(reason_of(f), Catch::Contains("has no digest approved by {'sha1': {'9069ca78e7450a285173431b3e52c5c25299e473'}"));
  }
}

TEST_CASE("bootlog_evaluate framing: empty refstates, missing PCRs, unknown and reject-all policies") {
  auto parsed = secureboot_log().data;
  const std::string ref = policy_file("rhel9-ovmf-secureboot.json").dump();
  CHECK_FALSE(evaluate_boot_log("example", "", parsed, kAllPcrs).failed());
  CHECK_FALSE(evaluate_boot_log("example", "{}", parsed, kAllPcrs).failed());
  CHECK_FALSE(evaluate_boot_log("accept-all", ref, parsed, {}).failed());
  CHECK_THROWS_AS(evaluate_boot_log("example", "{not json", parsed, kAllPcrs), ParseError);
  CHECK_THROWS_AS(parse_refstate("[1,"), ParseError);
  auto pre = parse_refstate(ref);
  CHECK_FALSE(evaluate_boot_log("example", pre, parsed, kAllPcrs).failed());
  CHECK_FALSE(evaluate_boot_log("example", parse_refstate(""), parsed, kAllPcrs).failed());
  // Evaluating twice with one parsed refstate: the "once" rules start afresh each time.
  CHECK_FALSE(evaluate_boot_log("example", pre, parsed, kAllPcrs).failed());

  auto missing = evaluate_boot_log("example", ref, parsed, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE(missing.event_ids() == std::vector<std::string>{"measured_boot.missing_pcrs"});
  CHECK(missing.events()[0].context == json{{"context", "PCRs are missing in quote"}, {"data", {9, 14}}});

  auto rejected = evaluate_boot_log("reject-all", ref, parsed, {});
  REQUIRE(rejected.event_ids() == std::vector<std::string>{"measured_boot.policy_reject-all"});
  CHECK(rejected.events()[0].context["reason"] == "reject all");
  auto unknown = evaluate_boot_log("no-such-policy", R"({"b": [1, true, null], "a": "it's"})", parsed, {});
  REQUIRE(unknown.event_ids() == std::vector<std::string>{"measured_boot.policy_reject-all"});
  // Python str() of the refstate, keys in the order written.
  CHECK(unknown.events()[0].context["refstate"] == R"({'b': [1, True, None], 'a': "it's"})");
}

TEST_CASE("malformed reference states: 'policy evaluation failed: ...'") {
  auto parsed = secureboot_log().data;
  auto ref = policy_file("rhel9-ovmf-secureboot.json");
  auto reason_for = [&](const json& r) { return reason_of(evaluate_boot_log("example", r.dump(), parsed, kAllPcrs)); };

  CHECK(reason_for(json::array({1})) ==
        "policy evaluation failed: Expected refstate to be a Python dict but instead got this Python value: [1]");
  auto r = ref;
  r.erase("kernels");
  CHECK(reason_for(r) == "policy evaluation failed: refstate['kernels'] is None instead of a list");
  r = ref;
  r.erase("mokxdig");
  CHECK(reason_for(r) == "policy evaluation failed: refstate lacks mokxdig");
  r = ref;
  r.erase("scrtm_and_bios");
  CHECK(reason_for(r) == "policy evaluation failed: refstate['scrtm_and_bios'] is missing");
  r = ref;
  r["kernels"][0]["shim_authcode_sha256"] = "0xABC";
  CHECK(reason_for(r) == "policy evaluation failed: '0xABC' is not 0x followed by some lowercase hex digits");
  r = ref;
  r["pk"][0]["SignatureData"] = "3082";
  CHECK(reason_for(r) == "policy evaluation failed: '3082' does not start with 0x");
  r = ref;
  r["kernels"][0]["kernel_cmdline"] = "(unclosed";
  CHECK_THAT(reason_for(r), Catch::StartsWith("policy evaluation failed: bad regular expression"));
  CHECK_THROWS_AS(find_policy("example")->check_refstate(json::object()), std::invalid_argument);
  CHECK_NOTHROW(find_policy("example")->check_refstate(ref));
}

TEST_CASE("no-Secure-Boot reference state: laptop firmware events the example policy has no rule for") {
  auto nosb = parse_boot_log(read_bytes(mb_dir() + "binary_bios_measurements"));
  auto ref = policy_file("fedora41-no-secureboot.json");
  auto data = nosb.data;
  data["events"].erase(1);  // without the StartupLocality record the next rejection shows
  auto f = evaluate_boot_log("example", ref.dump(), data, kAllPcrs);
  CHECK_THAT(reason_of(f), Catch::EndsWith("has unexpected ('PCRIndex', 'EventType') combination (0, 'EV_S_CRTM_CONTENTS')"));
  // The same refstate claiming Secure Boot lacks the kernel's Authenticode digest.
  ref["has_secureboot"] = true;
  auto g = evaluate_boot_log("example", ref.dump(), data, kAllPcrs);
  CHECK_THAT(reason_of(g), Catch::StartsWith("policy evaluation failed: {'grub_authcode_sha256': ") &&
                               Catch::EndsWith(" lacks fields {'kernel_authcode_sha256'}"));
}
