// The agent-side reader of the registrar's makecredential blob, and auth_tag.
#include <catch2/catch.hpp>

#include "agent/agent_identity.hpp"
#include "agent/registration.hpp"
#include "common/attest/parse_error.hpp"

using namespace kl::testing;

namespace {
kl::Bytes blob_with(std::uint16_t id_len, std::uint16_t secret_len, std::size_t id_actual, std::size_t secret_actual,
                    std::uint32_t magic = 0xBADCC0DE, std::uint32_t version = 1) {
  kl::Bytes b;
  auto u32 = [&](std::uint32_t v) { for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s)); };
  auto u16 = [&](std::uint16_t v) { b.push_back(static_cast<std::uint8_t>(v >> 8)); b.push_back(static_cast<std::uint8_t>(v)); };
  u32(magic);
  u32(version);
  u16(id_len);
  b.insert(b.end(), id_actual, 0x11);
  u16(secret_len);
  b.insert(b.end(), secret_actual, 0x22);
  return b;
}
}  // namespace

TEST_CASE("parse_credential_blob splits a well-formed blob", "[agent][blob]") {
  const auto parts = parse_credential_blob(blob_with(68, 256, 68, 256));
  CHECK(parts.id_object == kl::Bytes(68, 0x11));
  CHECK(parts.encrypted_secret == kl::Bytes(256, 0x22));
}

TEST_CASE("parse_credential_blob rejects malformed blobs", "[agent][blob]") {
  CHECK_THROWS_AS(parse_credential_blob({}), kl::ParseError);
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(4, 4, 4, 4, 0xBADCC0DF)), Catch::Contains("magic"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(4, 4, 4, 4, 0xBADCC0DE, 2)), Catch::Contains("version"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(68, 256, 60, 0)), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(68, 256, 68, 255)), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(68, 256, 68, 257)), Catch::Contains("trailing"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(0xFFFF, 4, 0, 0)), Catch::Contains("too large"));
  CHECK_THROWS_WITH(parse_credential_blob(blob_with(4, 0xFFFF, 4, 0)), Catch::Contains("too large"));
  auto b = blob_with(68, 256, 68, 256);
  b.resize(9);
  CHECK_THROWS_AS(parse_credential_blob(b), kl::ParseError);
}

TEST_CASE("auth_tag is hex(HMAC-SHA384(base64(credential), agent_id))", "[agent][auth_tag]") {
  // Vector computed independently with Python's hmac/hashlib.
  const std::string cred = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
  const std::string tag = auth_tag(kl::as_bytes(cred), "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  CHECK(tag ==
        "99371ba1dbc4052a34e8eda70f0c10ec0701be7cdb3f7f99671aee66fa55624a49ccd038a7f9d8924aa3e95c14209853");
  CHECK(auth_tag(kl::as_bytes(cred), "another-agent") != tag);
}
