// Request paths: splitting, versioned route matching with captures, agent id rule, log-safe printing.
#include <string>
#include <vector>

#include "common/service/api/agent_id.hpp"
#include "common/service/api/route_match.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view path = klfuzz::text(data, size);
  auto segments = kl::api::split_path(path);
  static const char* const kPatterns[] = {"/agents/:agent_id", "/agents/:agent_id/activate", "/agents", "/version", "/",
                                          "/allowlists/:name", "/mbpolicies/:name", "/verify/identity"};
  using S = kl::api::Scope;
  for (S scope : {S::unversioned, S::v2, S::v3, S::v2_and_v3}) {
    for (const char* p : kPatterns) {
      auto m = kl::api::match_path(scope, p, segments);
      if (!m) continue;
      for (const auto& [name, value] : m->captures) {
        (void)kl::api::valid_agent_id(value);
        // Log-safe: bounded (4 chars per escaped byte, "..." when cut) and printable ASCII only.
        const std::string shown = kl::api::printable_for_log(value);
        if (shown.size() > 4 * 120 + 3) __builtin_trap();
        for (unsigned char ch : shown)
          if (ch < 0x20 || ch >= 0x7f) __builtin_trap();
      }
    }
  }
  (void)kl::api::known_http_method(std::string(path.substr(0, 16)));
  (void)kl::api::valid_agent_id(path);
  return 0;
}
