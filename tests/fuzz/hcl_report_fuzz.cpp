// Azure HCL report (header + SNP report + runtime data + JSON claims): parse, claims, runtime binding.
#include "common/attest/azure/hcl_report.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::azure::HclReport r;
  if (!klfuzz::parses([&] { r = kl::azure::parse_hcl_report(klfuzz::bytes(data, size)); })) return 0;
  klfuzz::parses([&] { (void)kl::azure::verify_runtime_binding(r); });
  kl::azure::HclClaims c;
  if (!klfuzz::parses([&] { c = kl::azure::parse_claims(r); })) return 0;
  klfuzz::parses([&] { (void)kl::azure::check_hcl_ek(c, {}, true); });
  klfuzz::parses([&] { (void)kl::azure::check_hcl_ak(c, {}); });
  return 0;
}
