// SEV-SNP ATTESTATION_REPORT (versions 2, 3, 4, 5; 0x4A0 bytes, little-endian), spec §3.
// parse_report() is the "parse" step only: bounds and structure (spec §6 step 2, reserved bytes MBZ),
// no cryptography and no policy.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/product.hpp"
#include "common/attest/snp/tcb.hpp"

namespace kl::snp {

inline constexpr std::size_t kReportSize = 0x4A0;      // 1184
inline constexpr std::size_t kSignedRegionSize = 0x2A0;  // signature covers [0, 0x2A0)
inline constexpr std::size_t kReportDataOffset = 0x50;

// signer info bits 4:2
enum class SigningKey : std::uint8_t { vcek = 0, vlek = 1, none = 7 };

struct SnpReport {
  std::uint32_t version = 0;        // 0x000
  std::uint32_t guest_svn = 0;      // 0x004
  std::uint64_t policy = 0;         // 0x008 guest policy (§3.2); see accessors
  std::array<std::uint8_t, 16> family_id{};  // 0x010
  std::array<std::uint8_t, 16> image_id{};   // 0x020
  std::uint32_t vmpl = 0;           // 0x030
  std::uint32_t signature_algo = 0; // 0x034, 1 = ECDSA P-384 / SHA-384
  std::uint64_t current_tcb = 0;    // 0x038
  std::uint64_t platform_info = 0;  // 0x040 (§3.3)
  std::uint32_t signer_info = 0;    // 0x048: bit0 AUTHOR_KEY_EN, bit1 MASK_CHIP_KEY, bits4:2 SIGNING_KEY
  std::array<std::uint8_t, 64> report_data{};        // 0x050
  std::array<std::uint8_t, 48> measurement{};        // 0x090
  std::array<std::uint8_t, 32> host_data{};          // 0x0C0
  std::array<std::uint8_t, 48> id_key_digest{};      // 0x0E0
  std::array<std::uint8_t, 48> author_key_digest{};  // 0x110
  std::array<std::uint8_t, 32> report_id{};          // 0x140
  std::array<std::uint8_t, 32> report_id_ma{};       // 0x160
  std::uint64_t reported_tcb = 0;   // 0x180
  bool has_cpuid = false;           // v3+: the three CPUID bytes below are meaningful
  std::uint8_t cpuid_fam_id = 0;    // 0x188 (v3+)
  std::uint8_t cpuid_mod_id = 0;    // 0x189 (v3+)
  std::uint8_t cpuid_step = 0;      // 0x18A (v3+)
  std::array<std::uint8_t, 64> chip_id{};            // 0x1A0
  std::uint64_t committed_tcb = 0;  // 0x1E0
  std::uint8_t current_build = 0, current_minor = 0, current_major = 0;        // 0x1E8..0x1EA
  std::uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;  // 0x1EC..0x1EE
  std::uint64_t launch_tcb = 0;          // 0x1F0
  std::uint64_t launch_mit_vector = 0;   // 0x1F8 (v5; 0 before)
  std::uint64_t current_mit_vector = 0;  // 0x200 (v5; 0 before)
  std::array<std::uint8_t, 72> signature_r{};  // 0x2A0, little-endian, zero-extended
  std::array<std::uint8_t, 72> signature_s{};  // 0x2E8, little-endian

  // Product per spec §3.4: from CPUID on v3+; on v2 a Turin guess when CHIP_ID[8..64] is zero and CHIP_ID is
  // not, else unknown (Milan and Genoa are indistinguishable; verify_report resolves it from the certificate
  // or tries the configured products).
  Product product = Product::unknown;

  // --- signer info
  bool author_key_en() const { return (signer_info & 1u) != 0; }
  bool mask_chip_key() const { return (signer_info & 2u) != 0; }
  SigningKey signing_key() const { return static_cast<SigningKey>((signer_info >> 2) & 7u); }
  // --- guest policy (§3.2)
  std::uint8_t abi_minor() const { return static_cast<std::uint8_t>(policy & 0xFF); }
  std::uint8_t abi_major() const { return static_cast<std::uint8_t>((policy >> 8) & 0xFF); }
  bool policy_smt_allowed() const { return (policy >> 16) & 1u; }
  bool policy_migrate_ma() const { return (policy >> 18) & 1u; }
  bool policy_debug() const { return (policy >> 19) & 1u; }
  bool policy_single_socket() const { return (policy >> 20) & 1u; }
  // --- platform info (§3.3)
  bool platform_smt_enabled() const { return platform_info & 1u; }
  bool platform_tsme_enabled() const { return (platform_info >> 1) & 1u; }
  // CHIP_ID all zero (MASK_CHIP_ID, or a VLEK-signed report)
  bool chip_id_zero() const;
  // True when the report says there is no migration agent (REPORT_ID_MA all 0xFF).
  bool no_migration_agent() const;

  // TCB components decoded with the layout of `p` (or of `product` when p is unknown: Milan layout).
  TcbParts tcb(std::uint64_t raw, Product p = Product::unknown) const {
    return decode_tcb(raw, p == Product::unknown ? product : p);
  }
};

// Exactly kReportSize bytes. Throws kl::ParseError naming the problem for: wrong length ("SNP report is 100
// bytes, expected 1184"), version not in {2,3,4,5}, SIGNATURE_ALGO != 1, policy bit 17 clear or bits 63:26 set,
// signer-info reserved bits or SIGNING_KEY not in {0,1,7}, VMPL > 3, non-zero reserved ranges
// (0x04C, 0x188/0x18B..0x1A0, 0x1EB, 0x1EF, 0x208..0x2A0, 0x330..0x4A0), signature r/s bytes beyond 48 non-zero.
SnpReport parse_report(ByteView raw);

// Spec §3.4 product determination from a parsed report (what parse_report stores in `product`).
Product determine_product(const SnpReport& r);

// The bytes covered by the signature (first 0x2A0 of the raw report). Throws ParseError if raw is short.
ByteView signed_region(ByteView raw);

}  // namespace kl::snp
