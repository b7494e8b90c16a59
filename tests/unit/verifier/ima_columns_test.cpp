// The incremental IMA state in verifiermain's columns: round trip through a real SQLite file, and rows written
// the way upstream writes them.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/ima/keyring.hpp"
#include "common/service/storage/verifier_store.hpp"
#include "support/temp_dir.hpp"
#include "verifier/ima_columns.hpp"

using namespace kl::verifier;

namespace {
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
kl::storage::VerifierAgent base_row() {
  kl::storage::VerifierAgent a;
  a.agent_id = "cols-1";
  a.operational_state = 3;
  a.hash_alg = "sha256";
  return a;
}
}  // namespace

TEST_CASE("IMA state columns: written and read back through SQLite") {
  kl::testing::TempDir dir;
  auto store = kl::storage::open_verifier_store("sqlite", dir.path());
  auto row = base_row();
  row = store->add_agent(row, std::nullopt, std::nullopt);

  kl::ima::ImaState s;
  s.next_entry = 1234;
  s.boottime = 1700000000;
  s.pcr10 = kl::Bytes(32, 0xab);
  s.bank = kl::crypto::HashAlg::sha256;
  ima_state_to_row(s, row);
  CHECK(row.ima_pcrs == "[10]");
  CHECK(row.next_ima_ml_entry == 1234);
  REQUIRE(store->update_agent(row));

  const auto back = store->find_agent("cols-1");
  REQUIRE(back);
  CHECK(back->pcr10 == kl::Bytes(32, 0xab));
  const auto t = ima_state_from_row(*back, nullptr);
  CHECK(t.next_entry == 1234);
  CHECK(t.boottime == 1700000000);
  REQUIRE(t.pcr10);
  CHECK(*t.pcr10 == kl::Bytes(32, 0xab));
  CHECK(t.bank == kl::crypto::HashAlg::sha256);

  // Reset state: no PCR, [] in ima_pcrs.
  s.reset();
  ima_state_to_row(s, row);
  CHECK_FALSE(row.pcr10);
  CHECK(row.ima_pcrs == "[]");
  CHECK(row.next_ima_ml_entry == 0);
}

TEST_CASE("IMA state columns: rows as upstream writes them") {
  auto row = base_row();
  row.boottime = 1690000000;
  row.next_ima_ml_entry = 77;
  row.ima_pcrs = "[10]";
  row.pcr10 = kl::Bytes(20, 0x11);   // a sha1-bank agent
  row.hash_alg = "sha1";
  // ImaKeyrings.to_json(): keyring name -> keyring JSON *string*.
  const std::string keyring = read_file(std::string(KL_TESTDATA_DIR) + "/keylime/ima/ima-keyring.json");
  row.learned_ima_keyrings = nlohmann::json{{".ima", keyring}}.dump();
  auto s = ima_state_from_row(row, nullptr);
  CHECK(s.next_entry == 77);
  CHECK(s.bank == kl::crypto::HashAlg::sha1);
  REQUIRE(s.learned_keyrings.keyrings().count(".ima"));
  CHECK_FALSE(s.learned_keyrings.keyrings().at(".ima").empty());
  // Written back in the same shape.
  kl::storage::VerifierAgent out = base_row();
  ima_state_to_row(s, out);
  const auto j = nlohmann::json::parse(*out.learned_ima_keyrings);
  REQUIRE(j.contains(".ima"));
  CHECK(j[".ima"].is_string());

  SECTION("hash_alg missing: the bank follows the value's size") {
    row.hash_alg.reset();
    row.pcr10 = kl::Bytes(48, 1);
    CHECK(ima_state_from_row(row, nullptr).bank == kl::crypto::HashAlg::sha384);
  }
  SECTION("an offset without its PCR value restarts from the first entry") {
    row.pcr10.reset();
    s = ima_state_from_row(row, nullptr);
    CHECK(s.next_entry == 0);
    CHECK_FALSE(s.pcr10);
  }
  SECTION("garbage keyrings are ignored") {
    row.learned_ima_keyrings = "not json";
    CHECK(ima_state_from_row(row, nullptr).learned_keyrings.empty());
  }
  SECTION("a fresh agent (upstream's defaults)") {
    kl::storage::VerifierAgent fresh = base_row();
    fresh.boottime = 0;
    fresh.next_ima_ml_entry = 0;
    fresh.ima_pcrs = "[]";
    fresh.learned_ima_keyrings = "{}";
    s = ima_state_from_row(fresh, nullptr);
    CHECK(s.next_entry == 0);
    CHECK_FALSE(s.pcr10);
  }
}
