// Legacy allowlists (flat text and JSON), exclude lists and old-format runtime policy upgrades.
#include "common/attest/policy/legacy_conversion.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = klfuzz::text(data, size);
  const std::string ts = "2024-01-01 00:00:00.000000";
  klfuzz::parses([&] { (void)kl::policy::to_text(kl::policy::convert_flat_allowlist(text, ts)); });
  klfuzz::parses([&] { (void)kl::policy::to_text(kl::policy::convert_legacy_allowlist(text, ts)); });
  klfuzz::parses([&] {
    auto p = kl::policy::empty_runtime_policy();
    kl::policy::append_exclude_list(text, p);
  });
  auto doc = klfuzz::json_or_discarded(data, size);
  if (!doc.is_discarded()) {
    klfuzz::parses([&] { (void)kl::policy::to_text(kl::policy::convert_json_allowlist(doc, ts)); });
    klfuzz::parses([&] { (void)kl::policy::to_text(kl::policy::upgrade_runtime_policy(doc, ts)); });
  }
  return 0;
}
