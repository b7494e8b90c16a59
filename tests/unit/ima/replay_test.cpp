#include <catch2/catch.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/measurement_list.hpp"
#include "common/attest/ima/replay.hpp"
#include "common/attest/ima/template_hash.hpp"
#include "common/attest/parse_error.hpp"
#include "ima_test_util.hpp"

using namespace kl;
using namespace kl::ima;
using kl::test_ima::slurp;
using crypto::HashAlg;

namespace {
// Independent reference: extend with the template hash column as the kernel does for sha1.
Bytes sha1_replay_of_column2(const std::string& text) {
  Bytes r(20, 0);
  for (const auto& l : parse_list(text)) {
    if (!l.entry) continue;
    Bytes th = l.entry->template_hash;
    if (th == Bytes(20, 0)) th = Bytes(20, 0xFF);
    Bytes cat = r;
    cat.insert(cat.end(), th.begin(), th.end());
    r = crypto::digest(HashAlg::sha1, cat);
  }
  return r;
}
}  // namespace

TEST_CASE("create-runtime-policy logs: template hashes per digest algorithm", "[ima][replay]") {
  for (std::string alg : {"sha1", "sha256", "sha384", "sha512"}) {
    INFO(alg);
    auto lines = parse_list(slurp("create-runtime-policy/ima-log-" + alg));
    REQUIRE(lines.size() == 2);
    REQUIRE(lines[1].entry);
    CHECK(lines[1].entry->digest.algorithm == alg);
    CHECK(lines[1].entry->name == "/data");
    auto h = hash_entry(*lines[1].entry, HashAlg::sha1, HashAlg::sha256);
    CHECK(h.template_hash_ok);
    // boot_aggregate: all-zero column 2 (violation) except in the sha256 log
    auto b = hash_entry(*lines[0].entry, HashAlg::sha1, HashAlg::sha256);
    CHECK(b.violation == (alg != "sha256"));
    CHECK(b.template_hash_ok);
  }
  // sm3_256: column 2 is SM3 of the template data; "unknown": an algorithm name we do not know still parses
  auto sm3 = parse_list(slurp("create-runtime-policy/ima-log-sm3_256"));
  REQUIRE(sm3.size() == 2);
  REQUIRE(sm3[1].entry);
  CHECK(sm3[1].entry->digest.algorithm == "sm3_256");
  if (crypto::evp_md(HashAlg::sm3_256)) {
    CHECK(hash_entry(*sm3[1].entry, HashAlg::sm3_256, HashAlg::sha256).template_hash_ok);
    CHECK(hash_entry(*sm3[0].entry, HashAlg::sm3_256, HashAlg::sha256).violation);
  }
  CHECK_FALSE(hash_entry(*sm3[1].entry, HashAlg::sha1, HashAlg::sha256).template_hash_ok);
  auto unk = parse_list(slurp("create-runtime-policy/ima-log-unknown"));
  REQUIRE(unk.size() == 2);
  REQUIRE(unk[1].entry);
  CHECK(unk[1].entry->digest.algorithm == "unknown");
  CHECK(unk[1].entry->digest.hash.size() == 29);
}

TEST_CASE("sha1 replay equals the kernel's extend of column 2", "[ima][replay]") {
  for (std::string f : {"ima/measurements.ima-sig.txt", "ima/combined.ima-sig.txt",
                        "create-runtime-policy/ima-log-sha1", "create-runtime-policy/ima-log-sha256"}) {
    INFO(f);
    const auto text = slurp(f);
    const Bytes expect = sha1_replay_of_column2(text);
    auto r = replay_pcr10(text, HashAlg::sha1, initial_pcr10(HashAlg::sha1), ByteView(expect));
    CHECK(r.final_value == expect);
    REQUIRE(r.match_line);
    CHECK(*r.match_line == r.log_length);
  }
}

TEST_CASE("replay in every bank - the quoted value of another bank never matches", "[ima][replay]") {
  const auto text = slurp("ima/combined.ima-sig.txt");
  for (HashAlg bank : {HashAlg::sha1, HashAlg::sha256, HashAlg::sha384, HashAlg::sha512}) {
    INFO(crypto::hash_name(bank));
    auto lines = parse_list(text);
    auto hashes = hash_entries(lines, HashAlg::sha1, bank);
    // reference replay computed with the generic digest API
    Bytes r = initial_pcr10(bank);
    for (const auto& l : lines) {
      Bytes cat = r;
      Bytes th = crypto::digest(bank, template_data(*l.entry));
      cat.insert(cat.end(), th.begin(), th.end());
      r = crypto::digest(bank, cat);
    }
    auto res = replay_pcr10(lines, hashes, bank, initial_pcr10(bank), ByteView(r));
    CHECK(res.final_value == r);
    CHECK(res.match_line == std::optional<std::size_t>(5));
    CHECK(r.size() == crypto::digest_size(bank));
  }
}

TEST_CASE("prefix match: a quote that lags the log matches an earlier line", "[ima][replay]") {
  const auto text = slurp("ima/combined.ima-sig.txt");
  // PCR value after the first 3 lines only
  auto first3 = text.substr(0, [&] {
    std::size_t pos = 0;
    for (int i = 0; i < 3; ++i) pos = text.find('\n', pos) + 1;
    return pos;
  }());
  auto lag = replay_pcr10(first3, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt);
  auto r = replay_pcr10(text, HashAlg::sha256, initial_pcr10(HashAlg::sha256), ByteView(lag.final_value));
  REQUIRE(r.match_line);
  CHECK(*r.match_line == 3);
  CHECK(r.value_at_match == lag.final_value);
  CHECK(r.final_value != lag.final_value);
  CHECK(r.log_length == 5);
  // start value equal to the quote: match at line 0
  auto z = replay_pcr10(text, HashAlg::sha256, initial_pcr10(HashAlg::sha256), ByteView(initial_pcr10(HashAlg::sha256)));
  CHECK(z.match_line == std::optional<std::size_t>(0));
  // no match
  Bytes bogus(32, 0x42);
  auto n = replay_pcr10(text, HashAlg::sha256, initial_pcr10(HashAlg::sha256), ByteView(bogus));
  CHECK_FALSE(n.matched());
}

TEST_CASE("incremental replay equals full replay", "[ima][replay][incremental]") {
  const auto text = slurp("ima/combined.ima-sig.txt") + slurp("ima/keyrings.ima-buf.txt");
  auto full = replay_pcr10(text, HashAlg::sha256, initial_pcr10(HashAlg::sha256), std::nullopt);
  // feed the lines one chunk at a time, carrying the running value
  auto lines_text = std::vector<std::string>{};
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines_text.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  for (std::size_t chunk : {1u, 2u, 4u}) {
    Bytes running = initial_pcr10(HashAlg::sha256);
    for (std::size_t i = 0; i < lines_text.size(); i += chunk) {
      std::string part;
      for (std::size_t j = i; j < std::min(i + chunk, lines_text.size()); ++j) part += lines_text[j] + "\n";
      running = replay_pcr10(part, HashAlg::sha256, running, std::nullopt).final_value;
    }
    CHECK(running == full.final_value);
  }
}

TEST_CASE("unparsable lines are not extended", "[ima][replay]") {
  const auto good = slurp("ima/measurements.ima-sig.txt");
  auto a = replay_pcr10(good, HashAlg::sha1, initial_pcr10(HashAlg::sha1), std::nullopt);
  auto b = replay_pcr10("garbage\n" + good + "10 zz ima-ng sha1:00 /x\n", HashAlg::sha1, initial_pcr10(HashAlg::sha1),
                        std::nullopt);
  CHECK(a.final_value == b.final_value);
  CHECK(b.log_length == a.log_length + 2);
}

TEST_CASE("quote progress rule", "[ima][replay]") {
  std::optional<std::pair<std::int64_t, std::int64_t>> p;
  CHECK(check_quote_progress(p, 3, 5));   // first round: recorded, lag 2
  CHECK_FALSE(check_quote_progress(p, 1, 4));  // still lagging and matched before the previous lag
  CHECK(check_quote_progress(p, 4, 4));   // caught up
  CHECK(check_quote_progress(p, 0, 2));   // previous lag 0
  CHECK(check_quote_progress(p, 2, 3));   // prev lag 2, match 2 >= 2
}

TEST_CASE("offset handling and state serialisation", "[ima][state]") {
  ImaState s;
  s.next_entry = 7;
  s.boottime = 100;
  s.pcr10 = Bytes(32, 0xAB);
  s.bank = HashAlg::sha256;
  s.quote_progress = std::make_pair(3, 5);
  auto j = s.to_json();
  auto back = ImaState::from_json(nlohmann::json::parse(j.dump()));
  CHECK(back.next_entry == 7);
  CHECK(back.boottime == 100);
  CHECK(back.pcr10 == s.pcr10);
  CHECK(back.bank == HashAlg::sha256);
  CHECK(back.quote_progress == s.quote_progress);
  CHECK_THROWS_AS(ImaState::from_json(nlohmann::json::parse(R"({"pcr10":"abcd","bank":"sha256"})")), ParseError);
  CHECK_THROWS_AS(ImaState::from_json(nlohmann::json::parse(R"({"pcr10":"zz"})")), ParseError);
  CHECK_THROWS_AS(ImaState::from_json(nlohmann::json::array()), ParseError);

  ImaState t = back;
  CHECK(check_ima_offset(t, 7, 100) == OffsetDecision::incremental);
  CHECK(t.pcr10);
  CHECK(check_ima_offset(t, 5, 100) == OffsetDecision::entry_mismatch);
  CHECK(check_ima_offset(t, 7, 200) == OffsetDecision::rebooted);
  CHECK_FALSE(t.pcr10);
  CHECK(t.next_entry == 0);
  ImaState u = back;
  CHECK(check_ima_offset(u, 0, 300) == OffsetDecision::full_replay);
  CHECK(u.next_entry == 0);
  CHECK(u.boottime == 300);
}
