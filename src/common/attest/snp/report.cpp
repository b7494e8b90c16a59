#include "common/attest/snp/report.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/attest/parse_error.hpp"

namespace kl::snp {

namespace {

std::uint32_t u32(ByteView b, std::size_t off) {
  return std::uint32_t{b[off]} | std::uint32_t{b[off + 1]} << 8 | std::uint32_t{b[off + 2]} << 16 |
         std::uint32_t{b[off + 3]} << 24;
}
std::uint64_t u64(ByteView b, std::size_t off) {
  return std::uint64_t{u32(b, off)} | std::uint64_t{u32(b, off + 4)} << 32;
}
template <std::size_t N>
void copy(std::array<std::uint8_t, N>& dst, ByteView b, std::size_t off) {
  std::memcpy(dst.data(), b.data() + off, N);
}
bool all_zero(ByteView b, std::size_t lo, std::size_t hi) {
  return std::all_of(b.begin() + lo, b.begin() + hi, [](std::uint8_t c) { return c == 0; });
}
std::string hex_off(std::size_t v) {
  static const char* d = "0123456789ABCDEF";
  std::string s;
  do {
    s.insert(s.begin(), d[v & 15]);
    v >>= 4;
  } while (v);
  return "0x" + s;
}
[[noreturn]] void fail(const std::string& why) { throw ParseError("malformed SNP report: " + why); }

}  // namespace

bool SnpReport::chip_id_zero() const {
  return std::all_of(chip_id.begin(), chip_id.end(), [](std::uint8_t c) { return c == 0; });
}
bool SnpReport::no_migration_agent() const {
  return std::all_of(report_id_ma.begin(), report_id_ma.end(), [](std::uint8_t c) { return c == 0xFF; });
}

Product determine_product(const SnpReport& r) {
  if (r.has_cpuid) {
    if (r.cpuid_fam_id == 0x19) {
      if (r.cpuid_mod_id <= 0x0F) return Product::milan;
      if ((r.cpuid_mod_id >= 0x10 && r.cpuid_mod_id <= 0x1F) || (r.cpuid_mod_id >= 0xA0 && r.cpuid_mod_id <= 0xAF))
        return Product::genoa;
    } else if (r.cpuid_fam_id == 0x1A && r.cpuid_mod_id <= 0x11) {
      return Product::turin;
    }
    return Product::unknown;
  }
  // v2: Turin leaves CHIP_ID[8..64] zero (its hwID is 8 bytes); Milan and Genoa cannot be told apart here.
  bool head_zero = std::all_of(r.chip_id.begin(), r.chip_id.begin() + 8, [](std::uint8_t c) { return c == 0; });
  bool tail_zero = std::all_of(r.chip_id.begin() + 8, r.chip_id.end(), [](std::uint8_t c) { return c == 0; });
  if (tail_zero && !head_zero) return Product::turin;
  return Product::unknown;
}

ByteView signed_region(ByteView raw) {
  if (raw.size() < kSignedRegionSize) throw ParseError("SNP report shorter than its signed region");
  return raw.first(kSignedRegionSize);
}

SnpReport parse_report(ByteView b) {
  if (b.size() != kReportSize)
    throw ParseError("SNP report is " + std::to_string(b.size()) + " bytes, expected " + std::to_string(kReportSize));
  SnpReport r;
  r.version = u32(b, 0x000);
  if (r.version < 2 || r.version > 5)
    throw ParseError("unsupported SNP report version " + std::to_string(r.version) + " (supported: 2, 3, 4, 5)");
  r.guest_svn = u32(b, 0x004);
  r.policy = u64(b, 0x008);
  copy(r.family_id, b, 0x010);
  copy(r.image_id, b, 0x020);
  r.vmpl = u32(b, 0x030);
  r.signature_algo = u32(b, 0x034);
  r.current_tcb = u64(b, 0x038);
  r.platform_info = u64(b, 0x040);
  r.signer_info = u32(b, 0x048);
  copy(r.report_data, b, 0x050);
  copy(r.measurement, b, 0x090);
  copy(r.host_data, b, 0x0C0);
  copy(r.id_key_digest, b, 0x0E0);
  copy(r.author_key_digest, b, 0x110);
  copy(r.report_id, b, 0x140);
  copy(r.report_id_ma, b, 0x160);
  r.reported_tcb = u64(b, 0x180);
  if (r.version >= 3) {
    r.has_cpuid = true;
    r.cpuid_fam_id = b[0x188];
    r.cpuid_mod_id = b[0x189];
    r.cpuid_step = b[0x18A];
  }
  copy(r.chip_id, b, 0x1A0);
  r.committed_tcb = u64(b, 0x1E0);
  r.current_build = b[0x1E8];
  r.current_minor = b[0x1E9];
  r.current_major = b[0x1EA];
  r.committed_build = b[0x1EC];
  r.committed_minor = b[0x1ED];
  r.committed_major = b[0x1EE];
  r.launch_tcb = u64(b, 0x1F0);
  if (r.version >= 5) {
    r.launch_mit_vector = u64(b, 0x1F8);
    r.current_mit_vector = u64(b, 0x200);
  }
  copy(r.signature_r, b, 0x2A0);
  copy(r.signature_s, b, 0x2E8);

  // Structure (spec §6 step 2): anything else is not a report this firmware produced.
  if (r.signature_algo != 1)
    fail("SIGNATURE_ALGO is " + std::to_string(r.signature_algo) + ", only 1 (ECDSA P-384/SHA-384) is defined");
  if (((r.policy >> 17) & 1u) == 0) fail("guest policy bit 17 (reserved, must be 1) is clear");
  if (r.policy >> 26) fail("guest policy has must-be-zero bits 63:26 set");
  if (r.signer_info >> 5) fail("signer info has must-be-zero bits 31:5 set");
  auto sk = (r.signer_info >> 2) & 7u;
  if (sk != 0 && sk != 1 && sk != 7) fail("signer info SIGNING_KEY " + std::to_string(sk) + " is reserved");
  if (r.vmpl > 3) fail("VMPL " + std::to_string(r.vmpl) + " is out of range 0..3");
  struct Range {
    std::size_t lo, hi;
  };
  const Range reserved[] = {{0x04C, 0x050},
                            {r.version >= 3 ? std::size_t{0x18B} : std::size_t{0x188}, 0x1A0},
                            {0x1EB, 0x1EC},
                            {0x1EF, 0x1F0},
                            {0x208, 0x2A0},
                            {0x2A0 + 48, 0x2A0 + 72},
                            {0x2E8 + 48, 0x2E8 + 72},
                            {0x330, 0x4A0}};
  for (const auto& rg : reserved)
    if (!all_zero(b, rg.lo, rg.hi))
      fail("reserved bytes " + hex_off(rg.lo) + ".." + hex_off(rg.hi) + " are not zero");
  r.product = determine_product(r);
  return r;
}

}  // namespace kl::snp
