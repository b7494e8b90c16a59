// DSSE envelopes: detection, parsing, PAE and verification against embedded certificates / a fixed key.
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "common/attest/policy/dsse.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static EVP_PKEY* key = [] {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    return k;
  }();
  auto doc = klfuzz::json_or_discarded(data, size);
  if (doc.is_discarded()) {
    (void)kl::policy::dsse::decode_field(klfuzz::text(data, size));
    return 0;
  }
  klfuzz::parses([&] { (void)kl::policy::dsse::is_envelope(doc); });
  kl::policy::dsse::Envelope env;
  if (!klfuzz::parses([&] { env = kl::policy::dsse::parse_envelope(doc); })) return 0;
  (void)kl::policy::dsse::pae(env.payload_type, env.payload);
  klfuzz::parses([&] { (void)kl::policy::dsse::verify_with_key(env, key); });
  klfuzz::parses([&] { (void)kl::policy::dsse::verify_with_embedded_certificates(env); });
  return 0;
}
