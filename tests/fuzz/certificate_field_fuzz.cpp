// Certificate fields as sent at registration (ekcert, iak_cert, idevid_cert, mtls_cert): PEM, base64 DER, DER.
#include "common/attest/ek/certificate_field.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::ek::CertificateField f;
  if (!klfuzz::parses([&] { f = kl::ek::decode_certificate_field(klfuzz::text(data, size)); })) return 0;
  if (!f.leaf) return 0;
  (void)kl::ek::subject_text(f.leaf.get());
  (void)kl::ek::issuer_text(f.leaf.get());
  klfuzz::parses([&] { (void)kl::ek::to_pem(f.leaf.get()); });
  klfuzz::parses([&] {
    // The stored DER must decode again to the same certificate (it is read back from the DB).
    auto der = kl::ek::to_der(f.leaf.get());
    auto again = kl::ek::decode_certificate_field(kl::base64_encode(f.leaf_der));
    if (!again.leaf) __builtin_trap();
  });
  return 0;
}
