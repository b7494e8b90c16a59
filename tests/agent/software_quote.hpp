// A software TPM for quotes: a SHA-256 PCR bank, a TPM clock, and an AK held in software that signs real
// TPMS_ATTEST structures (marshalled with Tss2_MU_TPMS_ATTEST_Marshal) exactly as TPM2_Quote would, so the
// verifier cannot tell it from a TPM. Used by the fleet (thousands of agents in one process) and by tests that
// need hooks a real TPM will not allow (tampering, swapped AKs).
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::testing {

struct QuoteEvidence {
  kl::Bytes attest;      // marshalled TPMS_ATTEST
  kl::Bytes signature;   // marshalled TPMT_SIGNATURE
  kl::Bytes pcr_blob;    // tpm2-tools PCR blob (kl::quote::make_pcr_blob) of the quoted sha256 values
};

class SoftwareTpm {
 public:
  // `ak` is borrowed (must outlive this object): RSA -> RSASSA-SHA256, EC -> ECDSA-SHA256.
  // `ak_tpm2b_public` gives the qualifiedSigner (the AK's TPM Name).
  SoftwareTpm(EVP_PKEY* ak, kl::ByteView ak_tpm2b_public);

  void pcr_extend(unsigned pcr, kl::ByteView sha256_digest);   // throws std::invalid_argument on bad input
  void pcr_reset(unsigned pcr);                                 // back to all zeros
  kl::Bytes pcr_value(unsigned pcr) const;
  // resetCount + 1, restartCount = 0, PCRs zeroed, clock continues (a reboot as the verifier sees it).
  void reboot();

  // TPM2_Quote over `pcrs` (sha256 bank, any order, duplicates ignored) with qualifying data `nonce` (<= 64
  // bytes, else std::invalid_argument). Thread-safe.
  QuoteEvidence quote(kl::ByteView nonce, const std::vector<unsigned>& pcrs);

  void set_ak(EVP_PKEY* ak) { ak_ = ak; }   // sign with another key (the "swapped AK" hook)

 private:
  mutable std::mutex mu_;
  EVP_PKEY* ak_;
  std::mutex sign_mu_;   // guards the signing context (quotes of one TPM may run on several fleet threads)
  kl::ossl::PkeyCtx sign_ctx_;
  EVP_PKEY* sign_ctx_key_ = nullptr;
  kl::Bytes ak_name_;
  std::array<std::array<std::uint8_t, 32>, 24> pcrs_{};
  std::uint32_t reset_count_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::uint64_t clock_base_ms_ = 1000;
  std::uint64_t last_clock_ = 0;   // the clock strictly grows across quotes, as a TPM's does between them
};

// Signs `data` as a TPM would with `ak` (digest SHA-256) and returns the marshalled TPMT_SIGNATURE.
kl::Bytes sign_as_tpm(EVP_PKEY* ak, kl::ByteView data);

// Marshalled TPMS_ATTEST of a quote (magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE).
struct AttestFields {
  kl::Bytes qualified_signer;   // TPM Name
  kl::Bytes extra_data;         // nonce
  std::uint64_t clock = 0;
  std::uint32_t reset_count = 0, restart_count = 0;
  bool safe = true;
  std::uint64_t firmware_version = 0x2000000000000ull;
  std::uint32_t pcr_bitmap = 0;  // sha256 selection
  kl::Bytes pcr_digest;
};
kl::Bytes marshal_quote_attest(const AttestFields& f);

}  // namespace kl::testing
