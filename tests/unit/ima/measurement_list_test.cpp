#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/measurement_list.hpp"
#include "common/attest/ima/template_hash.hpp"
#include "common/attest/parse_error.hpp"
#include "ima_test_util.hpp"

using namespace kl;
using namespace kl::ima;
using kl::test_ima::load_json;

TEST_CASE("ast-entries: every valid sample parses and sha1(template data) equals column 2", "[ima][parse]") {
  auto doc = load_json("ima/ast-entries.json");
  int n = 0;
  for (auto& [name, item] : doc["valid"].items()) {
    INFO(name);
    const std::string line = item["line"];
    Entry e = parse_entry(line);
    const std::string cls = item["template_class"];
    const std::string expect_tpl = cls == "Ima" ? "ima" : cls == "ImaNg" ? "ima-ng" : cls == "ImaSig" ? "ima-sig" : "ima-buf";
    CHECK(template_name(e.kind) == expect_tpl);
    CHECK(e.pcr == "10");
    CHECK(crypto::digest(crypto::HashAlg::sha1, template_data(e)) == e.template_hash);
    auto h = hash_entry(e, crypto::HashAlg::sha1, crypto::HashAlg::sha1);
    CHECK(h.template_hash_ok);
    CHECK_FALSE(h.violation);
    CHECK(h.pcr_template_hash == e.template_hash);
    ++n;
  }
  CHECK(n == 6);
}

TEST_CASE("ast-entries: every invalid sample is a parse error", "[ima][parse]") {
  auto doc = load_json("ima/ast-entries.json");
  int n = 0;
  for (auto& [name, line] : doc["invalid"].items()) {
    INFO(name);
    CHECK_THROWS_AS(parse_entry(line.get<std::string>()), ParseError);
    ++n;
  }
  CHECK(n == 4);
}

TEST_CASE("field details of parsed entries", "[ima][parse]") {
  auto doc = load_json("ima/ast-entries.json");
  Entry rsa = parse_entry(doc["valid"]["ima-sig-rsa"]["line"].get<std::string>());
  REQUIRE(rsa.signature);
  CHECK(rsa.digest.algorithm == "sha256");
  CHECK(rsa.digest.hash.size() == 32);
  CHECK(rsa.name == "/usr/bin/dd");
  CHECK((*rsa.signature)[0] == 3);

  Entry missing = parse_entry(doc["valid"]["ima-sig-missing"]["line"].get<std::string>());
  CHECK_FALSE(missing.signature);
  Bytes td = template_data(missing);
  // the absent signature still contributes a zero length field
  REQUIRE(td.size() >= 4);
  CHECK(Bytes(td.end() - 4, td.end()) == Bytes{0, 0, 0, 0});

  Entry ima = parse_entry(doc["valid"]["ima"]["line"].get<std::string>());
  CHECK(ima.digest.algorithm == "sha1");
  CHECK(template_data(ima).size() == 20 + 256);

  Entry buf = parse_entry(doc["valid"]["ima-buf"]["line"].get<std::string>());
  CHECK(buf.name == "device_resume");
  CHECK(as_string(buf.buffer).rfind("name=TEST;", 0) == 0);
}

TEST_CASE("malformed lines are parse errors with a reason", "[ima][parse][malformed]") {
  const std::string d = "sha1:bc026ae66d81713e4e852465e980784dc96651f8";
  const std::string th = "7936eb315fb4e74b99e7d461bc5c96049e1ee092";
  auto reason = [](const std::string& line) {
    try {
      parse_entry(line);
    } catch (const ParseError& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  CHECK(reason("") != "parsed");
  CHECK(reason("10") != "parsed");
  CHECK(reason("10 " + th + " ima-ng") != "parsed");                      // truncated
  CHECK(reason("10 " + th + " ima-ng " + d) != "parsed");                 // no path
  CHECK(reason("10 " + th.substr(1) + " ima-ng " + d + " /x") != "parsed");  // odd hex length
  CHECK(reason("10 " + th + " ima-modsig " + d + " /x") == "No parser for mode ima-modsig implemented.");
  CHECK(reason("10 " + th + " ima-ngv2 " + d + " /x") == "No parser for mode ima-ngv2 implemented.");
  CHECK(reason("10 " + th + " ima-sig " + d + " /x") != "parsed");         // ima-sig needs 3 tokens
  CHECK(reason("10 " + th + " ima-buf " + d + " name zz") != "parsed");    // buffer not hex
  CHECK(reason("10 " + th + " ima abcd /x") != "parsed");                  // bare digest neither sha1 nor md5
  CHECK(reason("10 " + th + " ima-ng sha1:aa:bb /x") != "parsed");         // too many ':'
  CHECK(reason("10 " + th + " ima " + th + " " + std::string(300, 'a')) != "parsed");  // `n` longer than 255
  // a huge line parses without trusting anything (path of 1 MiB)
  Entry big = parse_entry("10 " + th + " ima-ng " + d + " /" + std::string(1 << 20, 'p'));
  CHECK(big.name.size() == (1u << 20) + 1);
  // template hash of another length is accepted by the parser (it will just not match)
  CHECK_NOTHROW(parse_entry("10 abcd ima-ng " + d + " /x"));
  // an ima-sig third token that is not a well-formed signature is treated as absent
  Entry e = parse_entry("10 " + th + " ima-sig " + d + " /x 0302");
  CHECK_FALSE(e.signature);
  Entry e2 = parse_entry("10 " + th + " ima-sig " + d + " /x nothex");
  CHECK_FALSE(e2.signature);
}

TEST_CASE("parse_list keeps line indexes, skips empty lines, reports errors", "[ima][parse]") {
  auto doc = load_json("ima/ast-entries.json");
  const std::string good = doc["valid"]["ima-ng"]["line"];
  const std::string text = good + "\n\ngarbage line\n" + good + "\n";
  auto lines = parse_list(text);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].index == 0);
  CHECK(lines[0].entry);
  CHECK(lines[1].index == 2);
  CHECK_FALSE(lines[1].entry);
  CHECK_FALSE(lines[1].error.empty());
  CHECK(lines[2].index == 3);
  // trailing spaces are significant (only '\n' is stripped)
  CHECK(parse_list("a b c d \n")[0].text == "a b c d ");
  CHECK(parse_list("").empty());
  CHECK(parse_list("\n\n\n").empty());
}

TEST_CASE("violation rule: all-zero column 2 extends all-FF in the bank size", "[ima][template_hash]") {
  Entry e = parse_entry("10 0000000000000000000000000000000000000000 ima-ng sha1:0000000000000000000000000000000000000000 boot_aggregate");
  auto h = hash_entry(e, crypto::HashAlg::sha1, crypto::HashAlg::sha256);
  CHECK(h.violation);
  CHECK(h.template_hash_ok);
  CHECK(h.pcr_template_hash == Bytes(32, 0xFF));
  // with a sha256 log hash algorithm a 20-byte zero hash is not a violation
  auto h2 = hash_entry(e, crypto::HashAlg::sha256, crypto::HashAlg::sha256);
  CHECK_FALSE(h2.violation);
  CHECK_FALSE(h2.template_hash_ok);
}

TEST_CASE("python_bytes_repr matches Python's str(bytes)", "[ima][parse]") {
  CHECK(python_bytes_repr(as_bytes("ab")) == "b'ab'");
  CHECK(python_bytes_repr(Bytes{0x00, 0x41, 0xff, '\n', '\\'}) == "b'\\x00A\\xff\\n\\\\'");
  CHECK(python_bytes_repr(as_bytes("it's")) == "b\"it's\"");
  CHECK(python_bytes_repr(as_bytes("'\"")) == "b'\\'\"'");
}
