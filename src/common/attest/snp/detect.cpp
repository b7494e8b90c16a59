#include "common/attest/snp/detect.hpp"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/attest/crypto/ossl.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/report.hpp"

namespace kl::snp {

namespace {
std::uint32_t u32(ByteView b, std::size_t off) {
  return std::uint32_t{b[off]} | std::uint32_t{b[off + 1]} << 8 | std::uint32_t{b[off + 2]} << 16 |
         std::uint32_t{b[off + 3]} << 24;
}
constexpr std::size_t kHclFixedPart = 1236;  // header + report + runtime-data header
}  // namespace

Detection detect_surrogate(ByteView b) {
  Detection d;
  if (b.size() >= 4 && u32(b, 0) == 0x414C4348) {
    if (b.size() < kHclFixedPart) {
      d.reason = "starts like an Azure HCL report but is too short";
      return d;
    }
    d.kind = EkcertKind::azure_hcl;
    return d;
  }
  if (b.size() < kReportSize) {
    d.reason = "neither an X.509 certificate nor an SEV-SNP report (too short)";
    return d;
  }
  std::uint32_t version = u32(b, 0);
  if (version < 2 || version > 5) {
    d.reason = "neither an X.509 certificate nor an SEV-SNP report (unknown version)";
    return d;
  }
  ByteView tail = b.subspan(kReportSize);
  // NV indexes are read whole, so a report in a larger index arrives followed by zero padding.
  bool zero_tail = std::all_of(tail.begin(), tail.end(), [](std::uint8_t c) { return c == 0; });
  if (!tail.empty() && !zero_tail) {
    try {
      (void)parse_cert_table(tail);
    } catch (const ParseError&) {
      d.reason = "SEV-SNP report followed by bytes that are not a certificate table";
      return d;
    }
  }
  d.kind = EkcertKind::snp_report;
  d.report = b.first(kReportSize);
  d.cert_table = zero_tail ? ByteView{} : tail;
  return d;
}

Detection classify_ekcert(ByteView b) {
  const unsigned char* p = b.data();
  ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(b.size())));
  ERR_clear_error();
  if (cert && p == b.data() + b.size()) {
    Detection d;
    d.kind = EkcertKind::x509;
    return d;
  }
  return detect_surrogate(b);
}

}  // namespace kl::snp
