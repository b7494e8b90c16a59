#include <catch2/catch.hpp>

#include <string>

#include "common/service/api/agent_id.hpp"

using kl::api::valid_agent_id;

TEST_CASE("agent ids accepted as upstream's valid_agent_id") {
  CHECK(valid_agent_id("d432fbb3-d2f1-4a97-9ef7-75bd81c00000"));
  CHECK(valid_agent_id("agent_1.example-host"));
  CHECK(valid_agent_id("A"));
  CHECK(valid_agent_id(std::string(80, 'a')));
}

TEST_CASE("agent ids rejected: path separators, dot-dot, control characters, NUL, length") {
  CHECK_FALSE(valid_agent_id(""));
  CHECK_FALSE(valid_agent_id(std::string(81, 'a')));
  CHECK_FALSE(valid_agent_id("a/b"));
  CHECK_FALSE(valid_agent_id("a\\b"));
  CHECK_FALSE(valid_agent_id(".."));
  CHECK_FALSE(valid_agent_id("."));
  CHECK_FALSE(valid_agent_id("a..b"));
  CHECK_FALSE(valid_agent_id("abc\n"));
  CHECK_FALSE(valid_agent_id(std::string("ab\0c", 4)));
  CHECK_FALSE(valid_agent_id("a b"));
  CHECK_FALSE(valid_agent_id("a%2Fb"));
  CHECK_FALSE(valid_agent_id("\xc3\xa9t\xc3\xa9"));
}

TEST_CASE("log text escapes control characters and is bounded") {
  using kl::api::printable_for_log;
  CHECK(printable_for_log("abc-1") == "abc-1");
  CHECK(printable_for_log("a\nb\\") == "a\\x0ab\\x5c");
  CHECK(printable_for_log(std::string("x\0y", 3)) == "x\\x00y");
  CHECK(printable_for_log(std::string(500, 'a'), 10) == "aaaaaaaaaa...");
}
