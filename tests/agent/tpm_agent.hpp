// A keylime agent identity backed by a real TPM through ESAPI (tpm2-tss), e.g. a swtpm via
// "swtpm:host=127.0.0.1,port=N". Mirrors rust-keylime: EK from the TCG default template (so it matches the
// EK certificate a manufacturer / swtpm_setup provisioned), AK created and loaded under the EK.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_identity.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::testing {

class TpmAgent : public AgentIdentity {
 public:
  enum class EkAlg { rsa2048, ecc_p256 };

  // Opens the TCTI (Tss2_TctiLdr_Initialize), CreatePrimary EK in the endorsement hierarchy with the TCG
  // default template (L-1 RSA 2048 / L-2 ECC P-256), creates and loads a restricted signing AK under the EK
  // (RSASSA-SHA256 or ECDSA-SHA256, attributes 0x00050072, nameAlg SHA-256; parent authorised by a
  // PolicySecret(endorsement) session), reads the EK certificate from NV 0x01c00002 (RSA) / 0x01c0000a (ECC)
  // if present. Throws std::runtime_error naming the failing TPM call and its decoded return code.
  explicit TpmAgent(const std::string& tcti, EkAlg alg = EkAlg::rsa2048);
  ~TpmAgent() override;
  TpmAgent(const TpmAgent&) = delete;
  TpmAgent& operator=(const TpmAgent&) = delete;

  kl::Bytes ek_tpm2b_public() const override;
  kl::Bytes ak_tpm2b_public() const override;
  std::optional<kl::Bytes> ek_certificate_der() const override;
  kl::Bytes activate_credential(kl::ByteView blob) override;

  struct Quote {
    kl::Bytes attest;            // marshalled TPMS_ATTEST (the TPM2B_ATTEST contents)
    kl::Bytes signature;         // marshalled TPMT_SIGNATURE
    kl::Bytes pcr_selection;     // marshalled TPML_PCR_SELECTION that was quoted
    std::vector<std::pair<unsigned, kl::Bytes>> pcr_values;   // (pcr index, value) in ascending order
  };
  // TPM2_Quote with the AK over `pcrs` of bank `bank`, qualifying data = nonce (max 64 bytes), signed with the
  // AK's scheme (RSASSA / ECDSA, SHA-256), followed by TPM2_PCR_Read of the same selection.
  Quote quote(kl::ByteView nonce, kl::crypto::HashAlg bank, const std::vector<unsigned>& pcrs);

  // TPM2_PCR_Extend of `pcr` in `bank` with a digest of that bank's size (for tests building IMA logs).
  void pcr_extend(unsigned pcr, kl::crypto::HashAlg bank, kl::ByteView digest);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kl::testing
