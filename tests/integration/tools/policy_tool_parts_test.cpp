// The pieces behind `keylime-policy create runtime`, on upstream's own test tables
// (test_create_runtime_policy.py): boot_aggregate parsing, measurement-list digests, flat
// allowlists, exclude-list validation, base-policy import and algorithm guessing.
#include <catch2/catch.hpp>

#include "tools/policy/create_measured_boot.hpp"
#include "tools/policy/create_runtime.hpp"
#include "tools/policy/digest_algorithm.hpp"
#include "tools/policy/measurement_list_digests.hpp"
#include "tools/policy/python_json.hpp"

using namespace kl::tools;
using kl::policy::DigestMap;
using nlohmann::json;

TEST_CASE("boot_aggregate_parse: upstream's cases") {
  using P = std::pair<std::string, std::string>;
  const std::string z40(40, '0');
  CHECK(boot_aggregate_parse("") == P{"invalid", ""});
  CHECK(boot_aggregate_parse("10 " + z40 + " ima " + z40 + " boot_aggregate") == P{"sha1", z40});
  CHECK(boot_aggregate_parse("10 " + z40 + " ima a00000000000000000000000000000000000000b boot_aggregate") ==
        P{"sha1", "a00000000000000000000000000000000000000b"});
  CHECK(boot_aggregate_parse("10 " + z40 + " ima a00000000000000000000000000000000000000bcc boot_aggregate") ==
        P{"invalid", ""});
  CHECK(boot_aggregate_parse("FOO BAR") == P{"invalid", ""});
  const std::string d256 = "0bc72531a41dbecb38557df75af4bc194e441e71dc677c659a1b179ac9b3e6ba";
  CHECK(boot_aggregate_parse("10 8d814e778e1fca7c551276523ac44455da1dc420 ima-ng sha256:" + d256 + " boot_aggregate") ==
        P{"sha256", d256});
  CHECK(boot_aggregate_parse("10 8d814e778e1fca7c551276523ac44455da1dc420 ima-ng sha1:" + d256 + " boot_aggregate") ==
        P{"invalid", ""});
  CHECK(boot_aggregate_parse("10 8d814e778e1fca7c551276523ac44455da1dc420 ima-ng unknown:" + d256 + " boot_aggregate") ==
        P{"invalid", ""});
  for (const char* bad : {"pcr pcr-value img-ng sha999:fff boot_aggregate", "pcr pcr-value img-ng sha1:fff boot_aggregate",
                          "pcr pcr-value img-ng sha256:fff boot_aggregate", "pcr pcr-value ima fff boot_aggregate"})
    CHECK(boot_aggregate_parse(bad) == P{"invalid", ""});
  // Another path than boot_aggregate on the first line names no algorithm.
  CHECK(boot_aggregate_of_list("10 " + z40 + " ima-ng sha1:" + z40 + " /usr/bin/ls\n").first == "invalid");
}

TEST_CASE("measurement list digests: upstream's cases") {
  DigestMap d;
  add_measurement_list_digests("\n\n", d);
  CHECK(d.empty());
  add_measurement_list_digests(
      "10 0adefe762c149c7cec19da62f0da1297fcfbffff ima-ng sha256:0000000000000000000000000000000000000000000000000000000000000000 boot_aggregate\n"
      "10 cff3da2ff339a1f07bb0dbcbc0381e794ed09555 ima-ng sha256:3e5e8ad9d8b4dd191413aba6166c7a975c3eab903d1fad77ecfa2d5810d6585c /usr/bin/kmod\n"
      "10 13d5b414e08a45698ce9e3c66545b25ba694046c ima-ng sha256:f51de8688a2903b94016c06f186cf1f053ececd2a88a5f349f29b35a06e94c43 /usr/lib64/ld-linux-x86-64.so.2\n",
      d);
  CHECK(d == DigestMap{{"boot_aggregate", {std::string(64, '0')}},
                       {"/usr/bin/kmod", {"3e5e8ad9d8b4dd191413aba6166c7a975c3eab903d1fad77ecfa2d5810d6585c"}},
                       {"/usr/lib64/ld-linux-x86-64.so.2", {"f51de8688a2903b94016c06f186cf1f053ececd2a88a5f349f29b35a06e94c43"}}});
  DigestMap none;
  add_measurement_list_digests(
      "10 cff3da2ff339a1f07bb0dbcbc0381e794ed09555 ima-ng sha256:3e5e8ad9d8b4dd191413aba6166c7a975c3eab903d1fad77ecfa2d5810d6585c",
      none);
  add_measurement_list_digests("10 6f3474e730fb7da4bb26cad2d8f5d9d5482735f6 ima-buf sha256:571016c9f57363c80e08dd4346391c4e70227e41b0247b8a3aa2240a178d3d14 dm_table_load 646d5f76",
                               none);
  CHECK(none.empty());

  DigestMap keyrings, imabuf;
  add_ima_buf_digests("10 6f3474e730fb7da4bb26cad2d8f5d9d5482735f6 ima-buf sha256:571016c9f57363c80e08dd4346391c4e70227e41b0247b8a3aa2240a178d3d14 dm_table_load 646d5f76\n",
                      {}, true, keyrings, true, imabuf);
  CHECK(keyrings.empty());
  CHECK(imabuf == DigestMap{{"dm_table_load", {"571016c9f57363c80e08dd4346391c4e70227e41b0247b8a3aa2240a178d3d14"}}});
}

TEST_CASE("flat allowlist: malformed lines skipped as upstream") {
  // (upstream's Python literal joins the "checksum-4" line with the next by a backslash-newline)
  DigestMap d;
  add_flat_allowlist("checksum file oops\n#\nchecksum-2\nchecksum-3 foo bar file 01\nchecksum-4          bar foo file 02\n\n\n", d);
  CHECK(d == DigestMap{{"file_oops", {"checksum"}}, {"foo_bar_file_01", {"checksum-3"}}, {"bar_foo_file_02", {"checksum-4"}}});
}

TEST_CASE("exclude list: each line must be a valid Python regex") {
  std::vector<std::string> ex;
  CHECK_FALSE(add_exclude_list("boot_aggregate\nboot.aggreg*$\nfoobar.so(.*)?\n", ex).has_value());
  CHECK(ex == std::vector<std::string>{"boot_aggregate", "boot.aggreg*$", "foobar.so(.*)?"});
  std::vector<std::string> bad;
  auto msg = add_exclude_list("boot_aggregate\nboot.aggreg*$\n*\nfoobar.so(.*)?\n\n", bad);
  REQUIRE(msg);
  CHECK(msg->rfind("Bad IMA exclude list rule '*': Invalid regex", 0) == 0);
  CHECK(bad.empty());
  std::vector<std::string> blank;
  CHECK_FALSE(add_exclude_list("\n\n\n", blank).has_value());
  CHECK(blank.empty());
}

TEST_CASE("base policy import and algorithm guessing") {
  CHECK_THROWS_AS(base_policy_from_json(json::parse(R"({"valid": "json", "verification-keys": "invalid"})")),
                  std::invalid_argument);
  CHECK_THROWS_AS(base_policy_from_json(json::parse(R"({"digests": {"/a": ["not-hex"]}})")), std::invalid_argument);
  CHECK_THROWS_AS(base_policy_from_json(json::array()), std::invalid_argument);
  auto p = base_policy_from_json(json::parse(R"({"excludes": ["b", "a", "b"], "ima": {"log_hash_alg": "sha256"}})"));
  CHECK(p.excludes == std::vector<std::string>{"a", "b"});
  CHECK(p.ima.log_hash_alg == "sha256");

  CHECK(algorithm_from_hex(std::string(40, 'a')) == "sha1");
  CHECK(algorithm_from_hex(std::string(64, 'a')) == "sha256");
  CHECK(algorithm_from_hex(std::string(96, 'a')) == "sha384");
  CHECK(algorithm_from_hex(std::string(128, 'a')) == "sha512");
  CHECK(algorithm_from_hex(std::string(32, 'a')) == "invalid");
  CHECK(algorithm_from_digest_map({{"f", {std::string(64, 'a')}}}, true) == "sha256_or_sm3_256");
  CHECK(algorithm_from_digest_map({}, false) == "invalid");
}

TEST_CASE("python_dumps keeps key order and Python's separators and escapes") {
  nlohmann::ordered_json o;
  o["z"] = 1;
  o["a"] = {true, nullptr, "caf\xc3\xa9\n"};
  o["m"] = nlohmann::ordered_json::object();
  CHECK(python_dumps(o) == R"({"z": 1, "a": [true, null, "caf\u00e9\n"], "m": {}})");
  CHECK(python_dumps(refstate_in_upstream_order(json{{"kernels", json::array()}, {"has_secureboot", false}, {"pk", 1}})) ==
        R"({"has_secureboot": false, "pk": 1, "kernels": []})");
}
