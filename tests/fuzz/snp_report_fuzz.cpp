// SEV-SNP attestation report (1184 bytes, little-endian): parse and product detection.
#include "common/attest/snp/report.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  klfuzz::parses([&] {
    auto r = kl::snp::parse_report(klfuzz::bytes(data, size));
    (void)kl::snp::determine_product(r);
    (void)kl::snp::signed_region(klfuzz::bytes(data, size));
    (void)r.tcb(r.reported_tcb);
  });
  return 0;
}
