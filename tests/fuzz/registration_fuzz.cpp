// Registration bodies (POST /v2.x/agents/<id>): strict JSON, then the registrar's field parsing.
#include "common/service/api/strict_json.hpp"
#include "fuzz_common.hpp"
#include "registrar/registration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json body;
  if (!klfuzz::parses([&] { body = kl::api::parse_json_strict(klfuzz::text(data, size)); })) return 0;
  // parse_registration reports problems in .errors; it must not throw on any JSON value.
  auto parsed = kl::registrar::parse_registration(body, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  if (parsed.errors.empty()) {
    kl::registrar::RegistrationPolicy policy;
    klfuzz::parses([&] { (void)kl::registrar::verify_registration(parsed, nullptr, policy); });
  }
  (void)kl::registrar::decode_binary_field(std::string(klfuzz::text(data, size)));
  return 0;
}
