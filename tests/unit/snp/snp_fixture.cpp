#include "snp_fixture.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace snptest {

using namespace kl;

Bytes read_testdata(const std::string& rel) {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/" + rel, std::ios::binary);
  if (!in) FAIL("missing test vector " << rel);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Bytes sample_ek_tpm() {
  Bytes j = read_testdata("keylime-db/registrar-get-agent-v2.1.json");
  auto doc = nlohmann::json::parse(j.begin(), j.end());
  auto b = base64_decode(doc["results"]["ek_tpm"].get<std::string>());
  REQUIRE(b);
  return *b;
}

}  // namespace snptest
