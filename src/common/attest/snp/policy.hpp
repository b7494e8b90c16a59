// The "validate" step for an SNP report (spec §6 steps 9-12): policy only, no cryptography. The policy file format
// is documented in policies/snp/README.md (JSON, every key optional, unknown keys rejected).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verdict.hpp"

namespace kl::snp {

// Per-component minimum; an absent component is not checked.
struct TcbMinimum {
  std::optional<std::uint8_t> bl, tee, snp, ucode, fmc;
  bool empty() const { return !bl && !tee && !snp && !ucode && !fmc; }
};

struct FirmwareVersion {
  std::uint8_t major = 0, minor = 0, build = 0;
};

struct SnpPolicy {
  std::uint32_t max_vmpl = 0;             // "max_vmpl"; the SVSM-vTPM case needs 0
  bool allow_debug = false;               // "allow_debug": guest policy bit 19
  bool allow_migration_agent = false;     // "allow_migration_agent": policy bit 18 / REPORT_ID_MA not all 0xFF
  bool allow_smt = true;                  // "allow_smt": false rejects policy SMT bit or platform SMT_EN
  bool require_single_socket = false;     // "require_single_socket"
  std::optional<std::pair<std::uint8_t, std::uint8_t>> minimum_abi;  // "minimum_abi": "1.51"
  TcbMinimum minimum_tcb;                 // "minimum_tcb": {"bl":3,"tee":0,"snp":8,"ucode":115,"fmc":0}
  bool minimum_tcb_applies_to_current = false;  // "check_current_tcb": also CURRENT_TCB >= minimum
  bool minimum_tcb_applies_to_launch = false;   // "check_launch_tcb": also LAUNCH_TCB >= minimum
  bool allow_provisional_firmware = false;      // "allow_provisional_firmware": else COMMITTED_TCB == CURRENT_TCB
  std::optional<FirmwareVersion> minimum_firmware;  // "minimum_firmware": "1.52.4" (major.minor.build)
  std::optional<std::uint32_t> minimum_guest_svn;   // "minimum_guest_svn"
  std::vector<Product> allowed_products;            // "products": ["Milan","Genoa"]; empty = any
  // Allow-lists; empty = not checked. Hex in the file, "0x" prefix accepted.
  std::vector<Bytes> measurements;        // "measurements" (48 bytes each)
  std::vector<Bytes> host_data;           // "host_data" (32 bytes)
  std::vector<Bytes> id_key_digests;      // "id_key_digests" (48 bytes)
  std::vector<Bytes> author_key_digests;  // "author_key_digests" (48 bytes)
};

// Throws kl::ParseError naming the key for: unknown keys, wrong types, bad hex / wrong digest length, out-of-range
// numbers, unknown product names.
SnpPolicy load_policy(const nlohmann::json& j);
SnpPolicy load_policy_file(const std::filesystem::path& path);  // JSON file; ParseError if unreadable

// Checks in order: VMPL (ERR_VMPL), debug (ERR_POLICY_DEBUG), other guest-policy / platform rules (ERR_POLICY),
// TCB (ERR_TCB: REPORTED_TCB >= minimum, REPORTED <= CURRENT, committed == current unless provisional allowed,
// firmware, guest SVN), allow-lists (ERR_MEASUREMENT). `product` selects the TCB layout (pass the product that
// verify_report established; unknown -> the report's own / Milan layout).
SnpVerdict validate_report(const SnpReport& report, const SnpPolicy& policy, Product product = Product::unknown);

}  // namespace kl::snp
