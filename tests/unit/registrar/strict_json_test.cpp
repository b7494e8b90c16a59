#include <catch2/catch.hpp>

#include "common/attest/parse_error.hpp"
#include "common/service/api/strict_json.hpp"

using kl::api::parse_json_strict;

TEST_CASE("strict JSON parses ordinary documents") {
  auto j = parse_json_strict(R"({"aik_tpm":"AAA=","port":9002,"nested":{"a":1,"b":[{"a":2},{"a":3}]}})");
  CHECK(j["port"] == 9002);
  CHECK(j["nested"]["b"][1]["a"] == 3);
  CHECK(parse_json_strict("[1,2]").is_array());
}

TEST_CASE("strict JSON rejects duplicate keys at any depth") {
  CHECK_THROWS_AS(parse_json_strict(R"({"ek_tpm":"A","ek_tpm":"B"})"), kl::ParseError);
  CHECK_THROWS_WITH(parse_json_strict(R"({"x":{"k":1,"k":2}})"), Catch::Contains("duplicate JSON key 'k'"));
  CHECK_THROWS_AS(parse_json_strict(R"([{"a":1},{"b":1,"b":1}])"), kl::ParseError);
  // The same key in sibling objects is fine.
  CHECK_NOTHROW(parse_json_strict(R"([{"a":1},{"a":1}])"));
}

TEST_CASE("strict JSON rejects malformed input") {
  CHECK_THROWS_AS(parse_json_strict(""), kl::ParseError);
  CHECK_THROWS_AS(parse_json_strict("{"), kl::ParseError);
  CHECK_THROWS_AS(parse_json_strict(R"({"a":1} trailing)"), kl::ParseError);
  CHECK_THROWS_AS(parse_json_strict("\xff\xfe"), kl::ParseError);
  CHECK_THROWS_AS(parse_json_strict(R"({"a":"\ud800"})"), kl::ParseError);
  CHECK_THROWS_AS(parse_json_strict(std::string(100000, '[')), kl::ParseError);
}
