// TPMS_ATTEST (quote and certify bodies, big-endian TPM marshalling).
#include "common/attest/tpm/attest.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  klfuzz::parses([&] {
    auto a = kl::tpm::parse_attest(klfuzz::bytes(data, size));
    for (const auto& sel : a.pcr_select)
      for (auto pcr : sel.pcrs)
        if (pcr > 0xFFFF) __builtin_trap();  // selection bitmaps hold at most 8*255 PCRs
  });
  return 0;
}
