// The AMD-specific X.509 extensions of a VCEK / VLEK (OID arc 1.3.6.1.4.1.3704.1, spec §4.2) and the rule that
// ties them to a report (spec §6 step 6).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <openssl/x509.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verdict.hpp"

namespace kl::snp {

enum class VekKind { vcek, vlek };

struct VekExtensions {
  std::optional<std::int64_t> struct_version;  // .1
  std::optional<std::string> product_name;     // .2 e.g. "Milan-B0", "Turin"
  std::optional<std::uint32_t> bl_spl, tee_spl, snp_spl, ucode_spl, fmc_spl;  // .3.1 .3.2 .3.3 .3.8 .3.9
  std::optional<std::uint32_t> spl4, spl5, spl6, spl7;                        // .3.4 - .3.7
  std::optional<Bytes> hw_id;                  // .4, raw bytes (64 Milan/Genoa, 8 Turin); VCEK only
  std::optional<std::string> csp_id;           // .5, VLEK only

  // VCEK when it has hwID and no cspID, VLEK for the reverse; nullopt if both/neither.
  std::optional<VekKind> kind() const;
  // Product from productName (nullopt if absent/unknown).
  std::optional<Product> product() const;
};

// Reads the extensions. Tolerant of hwID as raw bytes or as a DER OCTET STRING, and of multi-byte INTEGERs
// (ucodeSPL 02 02 00 D9). Throws kl::ParseError for a malformed value (e.g. an SPL that is not an INTEGER or
// exceeds 255).
VekExtensions parse_vek_extensions(X509* cert);

// Spec §6 step 6: the cert kind matches signer-info SIGNING_KEY; every SPL present equals REPORTED_TCB decoded with
// `product`'s layout (bl, tee, snp, ucode; fmc on Turin); for a VCEK with a non-zero CHIP_ID, hwID == CHIP_ID
// (Turin: first 8 bytes); productName names `product`. Failure -> SnpError::vek_mismatch.
SnpVerdict match_vek_to_report(const VekExtensions& ext, const SnpReport& report, Product product);

}  // namespace kl::snp
