// Test-only SEV-SNP "fake AMD": an ARK (RSA-4096, RSA-PSS SHA-384) -> ASK -> VCEK/VLEK (P-384, AMD extensions) chain
// generated at test time, a report builder and a report signer, so every verify/validate path can be exercised
// offline (as go-sev-guest's fake signer does), and SVSM-vTPM style EK surrogates for the registrar tests and the
// test agent. No Catch2 here (the test agent links it): failures throw std::runtime_error.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/tcb.hpp"

namespace snptest {

struct TestChain {
  kl::ossl::Pkey ark_key, ask_key, asvk_key;
  kl::ossl::X509Ptr ark, ask, asvk;  // ARK-Milan, SEV-Milan, SEV-VLEK-Milan (test keys, names as AMD's)
  std::string ark_sha256;
};
// Built once per process (RSA-4096 key generation is slow).
const TestChain& test_chain();
// A second, unrelated "AMD" with the same names (for "ARK not pinned").
const TestChain& rogue_chain();

struct LeafSpec {
  bool vlek = false;
  kl::Bytes hw_id;  // VCEK: 64 bytes
  kl::snp::TcbParts tcb{3, 0, 8, 115};
  std::string product_name = "Milan-B0";
  long not_before_days = -30, not_after_days = 3650;  // relative to now
  long serial = 0;
};
struct TestLeaf {
  kl::ossl::Pkey key;
  kl::ossl::X509Ptr cert;
  kl::Bytes der;
};
TestLeaf make_leaf(const TestChain& chain, const LeafSpec& spec);

// An unsigned version-2 Milan report with sane fields: policy 0x30000, VMPL 0, signer VCEK, all TCBs = tcb,
// firmware 1.52.4, REPORT_ID_MA all 0xFF.
struct ReportSpec {
  std::uint32_t version = 2;
  std::uint64_t policy = 0x30000;
  std::uint32_t vmpl = 0;
  std::uint32_t signer_info = 0;
  kl::snp::TcbParts tcb{3, 0, 8, 115};
  kl::Bytes chip_id;      // 64 bytes
  kl::Bytes report_data;  // 64 bytes (zero if empty)
  kl::Bytes measurement;  // 48 bytes (pattern if empty)
  std::uint8_t cpuid_fam = 0x19, cpuid_mod = 0x01, cpuid_step = 0x01;  // used for v3+
};
kl::Bytes build_report(const ReportSpec& spec);
// Signs [0, 0x2A0) with `key` (ECDSA P-384 / SHA-384), writing r, s little-endian at 0x2A0 / 0x2E8.
void sign_report(kl::Bytes& raw, EVP_PKEY* key);

// CRL issued by the ARK listing `revoked_serials` (certificates issued by the ARK, i.e. ASKs).
kl::Bytes make_ark_crl(const TestChain& chain, const std::vector<long>& revoked_serials, long next_update_days = 30);
// CRL issued by any certificate/key (e.g. the ASK, listing VCEK serials), RSA-PSS SHA-384 as AMD signs.
kl::Bytes make_crl(X509* issuer, EVP_PKEY* issuer_key, const std::vector<long>& revoked_serials,
                   long next_update_days = 30);

// An SVSM-vTPM EK-certificate surrogate: a report whose REPORT_DATA is SHA-512(ek_tpm) (ek_tpm = the TPM2B_PUBLIC
// bytes as the agent sends them), signed with `vcek_key`. spec.report_data is replaced; the rest is kept.
kl::Bytes surrogate_report(EVP_PKEY* vcek_key, kl::ByteView ek_tpm, ReportSpec spec);

std::string private_key_pem(EVP_PKEY* key);
kl::ossl::Pkey private_key_from_pem(const std::string& pem);

// A temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
};
// Writes <dir>/Milan/{ark,ask,asvk}.pem for the chain.
void write_store(const TestChain& chain, const std::filesystem::path& dir);
void write_file(const std::filesystem::path& p, kl::ByteView data);
std::string to_pem(X509* cert);
kl::Bytes to_der(X509* cert);

// A StoreCertSource pinned to the test chain's ARK.
kl::snp::StoreCertSource::Options test_store_options(const std::filesystem::path& dir);

kl::Bytes chip_id_of(std::uint8_t seed);  // 64 deterministic bytes

}  // namespace snptest
