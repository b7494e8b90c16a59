// TPMT_SIGNATURE: parse, then verify against a fixed EC and RSA key so the DER/ECDSA conversion runs too.
#include <openssl/evp.h>

#include "common/attest/crypto/ossl.hpp"
#include "common/attest/tpm/signature.hpp"
#include "fuzz_common.hpp"

namespace {
EVP_PKEY* key_of(const char* type) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx && EVP_PKEY_keygen_init(ctx) == 1) {
    if (std::string_view(type) == "EC") EVP_PKEY_CTX_set_group_name(ctx, "P-256");
    else EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
    EVP_PKEY_generate(ctx, &key);
  }
  EVP_PKEY_CTX_free(ctx);
  return key;  // kept for the process lifetime
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static EVP_PKEY* ec = key_of("EC");
  static EVP_PKEY* rsa = key_of("RSA");
  kl::tpm::Signature sig;
  if (!klfuzz::parses([&] { sig = kl::tpm::parse_signature(klfuzz::bytes(data, size)); })) return 0;
  static const std::uint8_t msg[] = "fuzz";
  klfuzz::parses([&] { (void)kl::tpm::verify_signature(ec, sig, kl::ByteView(msg, sizeof msg)); });
  klfuzz::parses([&] { (void)kl::tpm::verify_signature(rsa, sig, kl::ByteView(msg, sizeof msg)); });
  return 0;
}
