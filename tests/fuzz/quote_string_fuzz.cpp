// The agent's quote string "r<b64 attest>:<b64 sig>:<b64 pcrs>", then every part through its parser.
#include "common/attest/quote/pcr_blob.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/tpm/attest.hpp"
#include "common/attest/tpm/signature.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::quote::QuoteParts parts;
  if (!klfuzz::parses([&] { parts = kl::quote::parse_quote_string(klfuzz::text(data, size)); })) return 0;
  klfuzz::parses([&] { (void)kl::tpm::parse_attest(parts.attest); });
  klfuzz::parses([&] { (void)kl::tpm::parse_signature(parts.signature); });
  klfuzz::parses([&] {
    auto blob = kl::quote::parse_pcr_blob(parts.pcr_blob);
    (void)kl::quote::hash_pcr_bank(blob, 0x000B);
  });
  klfuzz::parses([&] {
    if (kl::quote::parse_quote_string(kl::quote::make_quote_string(parts)).attest != parts.attest) __builtin_trap();
  });
  return 0;
}
