#include "common/attest/snp/ek_binding.hpp"

#include <tss2/tss2_tpm2_types.h>

#include <algorithm>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace kl::snp {

Bytes expected_report_data(ByteView ek_tpm) { return crypto::digest(crypto::HashAlg::sha512, ek_tpm); }

SnpVerdict check_ek_binding(const SnpReport& report, ByteView ek_tpm, const EkBindingOptions& opts) {
  auto bad = [](std::string why) { return SnpVerdict::fail(SnpError::ek_binding, std::move(why)); };
  if (ek_tpm.empty()) return bad("ek_tpm is missing");
  // The EK must be a key the registrar can use for MakeCredential, whatever the digest says.
  tpm::PublicArea area;
  try {
    area = tpm::parse_tpm2b_public(ek_tpm);
  } catch (const ParseError& e) {
    return bad(std::string("ek_tpm is not a well-formed TPM2B_PUBLIC: ") + e.what());
  }
  if (area.tpmt.type != TPM2_ALG_RSA && area.tpmt.type != TPM2_ALG_ECC) return bad("ek_tpm is neither RSA nor ECC");

  const ByteView rd(report.report_data);
  Bytes full = crypto::digest(crypto::HashAlg::sha512, ek_tpm);
  if (std::equal(full.begin(), full.end(), rd.begin())) return SnpVerdict::pass();
  if (opts.allow_bare_tpmt && ek_tpm.size() > 2) {
    Bytes bare = crypto::digest(crypto::HashAlg::sha512, ek_tpm.subspan(2));
    if (std::equal(bare.begin(), bare.end(), rd.begin())) return SnpVerdict::pass();
  }
  return bad("REPORT_DATA " + hex_encode(rd.first(8)) + "... != SHA-512(ek_tpm) " + hex_encode(ByteView(full).first(8)) +
             "...: the report does not bind this EK");
}

}  // namespace kl::snp
