// TPM2B_PUBLIC (ek_tpm / aik_tpm / iak_tpm as sent at registration): parse, name, key import.
#include "common/attest/tpm/public_area.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::tpm::PublicArea area;
  if (!klfuzz::parses([&] { area = kl::tpm::parse_tpm2b_public(klfuzz::bytes(data, size)); })) return 0;
  klfuzz::parses([&] { (void)kl::tpm::name_of(area); });
  klfuzz::parses([&] {
    auto key = kl::tpm::public_key(area);
    (void)kl::tpm::spki_der(key.get());
  });
  return 0;
}
