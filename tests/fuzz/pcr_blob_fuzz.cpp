// The tpm2-tools PCR blob (third part of the quote string): parse and hash every bank.
#include "common/attest/quote/pcr_blob.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::quote::PcrBlob blob;
  if (!klfuzz::parses([&] { blob = kl::quote::parse_pcr_blob(klfuzz::bytes(data, size)); })) return 0;
  for (std::uint16_t alg : {0x0004, 0x000B, 0x000C, 0x000D, 0x0012, 0x0001})
    klfuzz::parses([&] { (void)kl::quote::hash_pcr_bank(blob, alg); });
  return 0;
}
