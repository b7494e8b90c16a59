// Runtime policy upload as the verifier handles it: accept_runtime_policy must never throw (a throw is a 500).
#include "common/attest/policy/policy_upload.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = klfuzz::text(data, size);
  auto result = kl::policy::accept_runtime_policy(text, kl::policy::UploadOptions{});
  if (auto* ok = std::get_if<kl::policy::AcceptedPolicy>(&result)) {
    (void)kl::policy::to_text(ok->policy);
    // What was accepted must load again from its stored form (the verifier re-reads it from the DB).
    auto doc = kl::policy::deserialize_runtime_policy(ok->stored_text);
    if (kl::policy::schema_error(doc)) __builtin_trap();
  }
  auto doc = klfuzz::json_or_discarded(data, size);
  if (!doc.is_discarded()) {
    if (!kl::policy::schema_error(doc))
      klfuzz::parses([&] { (void)kl::policy::to_json(kl::policy::runtime_policy_from_json(doc)); });
  }
  return 0;
}
