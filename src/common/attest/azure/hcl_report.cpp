#include "common/attest/azure/hcl_report.hpp"

#include <tss2/tss2_tpm2_types.h>

#include <algorithm>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/public_area.hpp"

namespace kl::azure {

using snp::SnpError;
using snp::SnpVerdict;

namespace {

std::uint32_t u32(ByteView b, std::size_t off) {
  return std::uint32_t{b[off]} | std::uint32_t{b[off + 1]} << 8 | std::uint32_t{b[off + 2]} << 16 |
         std::uint32_t{b[off + 3]} << 24;
}

[[noreturn]] void malformed(const std::string& why) { throw ParseError("ERR_HCL_MALFORMED: " + why); }

Bytes strip_zeros(Bytes b) {
  auto it = std::find_if(b.begin(), b.end(), [](std::uint8_t c) { return c != 0; });
  b.erase(b.begin(), it);
  return b;
}

// JWK members are base64url without padding; tolerate padding and the standard alphabet.
Bytes b64url(const std::string& s, const char* what) {
  std::string t;
  for (char c : s) {
    if (c == '-') t += '+';
    else if (c == '_') t += '/';
    else if (c != '=') t += c;
  }
  while (t.size() % 4) t += '=';
  auto b = base64_decode(t);
  if (!b || b->empty()) throw ParseError(std::string("runtime claims: ") + what + " is not base64url");
  return *b;
}

std::optional<RsaJwk> rsa_from_ek_tpm(ByteView tpm2b) {
  tpm::PublicArea a = tpm::parse_tpm2b_public(tpm2b);
  if (a.tpmt.type != TPM2_ALG_RSA) return std::nullopt;
  RsaJwk k;
  const auto& u = a.tpmt.unique.rsa;
  k.n = strip_zeros(Bytes(u.buffer, u.buffer + u.size));
  std::uint32_t e = a.tpmt.parameters.rsaDetail.exponent;
  if (e == 0) e = 65537;
  Bytes eb;
  for (int i = 3; i >= 0; --i) eb.push_back(static_cast<std::uint8_t>(e >> (8 * i)));
  k.e = strip_zeros(eb);
  return k;
}

SnpVerdict compare_key(const std::optional<RsaJwk>& claim, ByteView tpm2b, SnpError err, const char* kid,
                       const char* field) {
  std::optional<RsaJwk> mine;
  try {
    mine = rsa_from_ek_tpm(tpm2b);
  } catch (const ParseError& e) {
    return SnpVerdict::fail(err, std::string(field) + " is not a well-formed TPM2B_PUBLIC: " + e.what());
  }
  if (!mine) return SnpVerdict::fail(err, std::string(field) + " is not an RSA key, " + kid + " is");
  if (claim->n != mine->n || claim->e != mine->e)
    return SnpVerdict::fail(err, std::string(kid) + " in the HCL runtime claims is not the key in " + field);
  return SnpVerdict::pass();
}

}  // namespace

HclReport parse_hcl_report(ByteView b) {
  if (b.size() < kHclClaimsOffset)
    malformed("HCL report is " + std::to_string(b.size()) + " bytes, shorter than its fixed part (1236)");
  if (u32(b, 0) != kHclSignature) malformed("missing \"HCLA\" signature");
  HclReport r;
  r.version = u32(b, 4);
  r.report_size = u32(b, 8);
  r.request_type = u32(b, 12);
  r.status = u32(b, 16);
  r.data_size = u32(b, kHclRuntimeDataOffset);
  r.runtime_version = u32(b, kHclRuntimeDataOffset + 4);
  r.report_type = u32(b, kHclRuntimeDataOffset + 8);
  r.hash_type = u32(b, kHclRuntimeDataOffset + 12);
  r.claims_size = u32(b, kHclRuntimeDataOffset + 16);
  if (r.report_type == 4) malformed("TDX HCL reports are unsupported");
  if (r.report_type != 2) malformed("runtime data report_type " + std::to_string(r.report_type) + " is not SNP (2)");
  if (r.hash_type < 1 || r.hash_type > 3) malformed("hash_type " + std::to_string(r.hash_type) + " is not 1, 2 or 3");
  if (r.claims_size == 0 || r.claims_size > b.size() - kHclClaimsOffset)
    malformed("runtime claims (" + std::to_string(r.claims_size) + " bytes) extend beyond the blob");
  r.snp_report_raw.assign(b.begin() + kHclReportOffset, b.begin() + kHclRuntimeDataOffset);
  try {
    r.snp = snp::parse_report(r.snp_report_raw);
  } catch (const ParseError& e) {
    malformed(std::string("embedded ") + e.what());
  }
  r.claims.assign(b.begin() + kHclClaimsOffset, b.begin() + kHclClaimsOffset + r.claims_size);
  return r;
}

HclClaims parse_claims(const HclReport& r) {
  HclClaims c;
  c.json = nlohmann::json::parse(r.claims.begin(), r.claims.end(), nullptr, false);
  if (c.json.is_discarded() || !c.json.is_object()) throw ParseError("runtime claims are not a JSON object");
  if (auto it = c.json.find("keys"); it != c.json.end()) {
    if (!it->is_array()) throw ParseError("runtime claims: \"keys\" is not a list");
    for (const auto& k : *it) {
      if (!k.is_object() || !k.contains("kid") || !k["kid"].is_string()) continue;
      std::string kid = k["kid"].get<std::string>();
      if (kid != "HCLAkPub" && kid != "HCLEkPub") continue;
      if (k.value("kty", "") != "RSA" || !k.contains("n") || !k.contains("e") || !k["n"].is_string() ||
          !k["e"].is_string())
        throw ParseError("runtime claims: " + kid + " is not an RSA JWK");
      RsaJwk jwk{strip_zeros(b64url(k["n"].get<std::string>(), "n")), strip_zeros(b64url(k["e"].get<std::string>(), "e"))};
      (kid == "HCLAkPub" ? c.ak_pub : c.ek_pub) = std::move(jwk);
    }
  }
  if (auto it = c.json.find("vm-configuration"); it != c.json.end() && it->is_object())
    if (auto id = it->find("vmUniqueId"); id != it->end() && id->is_string()) c.vm_unique_id = id->get<std::string>();
  if (auto it = c.json.find("user-data"); it != c.json.end() && it->is_string()) {
    auto b = hex_decode(it->get<std::string>());
    if (!b) throw ParseError("runtime claims: user-data is not hex");
    c.user_data = std::move(*b);
  }
  return c;
}

SnpVerdict verify_runtime_binding(const HclReport& r) {
  crypto::HashAlg alg = r.hash_type == 1 ? crypto::HashAlg::sha256
                        : r.hash_type == 2 ? crypto::HashAlg::sha384
                                           : crypto::HashAlg::sha512;
  Bytes d = crypto::digest(alg, r.claims);
  const auto& rd = r.snp.report_data;
  if (!std::equal(d.begin(), d.end(), rd.begin()))
    return SnpVerdict::fail(SnpError::hcl_binding, "REPORT_DATA does not hold the digest of the runtime claims");
  if (!std::all_of(rd.begin() + static_cast<long>(d.size()), rd.end(), [](std::uint8_t c) { return c == 0; }))
    return SnpVerdict::fail(SnpError::hcl_binding, "REPORT_DATA has non-zero bytes after the claims digest");
  return SnpVerdict::pass();
}

SnpVerdict check_hcl_ek(const HclClaims& c, ByteView ek_tpm, bool allow_missing_ek) {
  if (!c.ek_pub) {
    if (allow_missing_ek) return SnpVerdict::pass();
    return SnpVerdict::fail(SnpError::hcl_no_ek, "the HCL runtime claims carry no HCLEkPub");
  }
  return compare_key(c.ek_pub, ek_tpm, SnpError::ek_binding, "HCLEkPub", "ek_tpm");
}

SnpVerdict check_hcl_ak(const HclClaims& c, ByteView aik_tpm) {
  if (!c.ak_pub) return SnpVerdict::fail(SnpError::ak_binding, "the HCL runtime claims carry no HCLAkPub");
  return compare_key(c.ak_pub, aik_tpm, SnpError::ak_binding, "HCLAkPub", "aik_tpm");
}

HclResult verify_hcl_report(const HclReport& r, ByteView ek_tpm, const HclCheckOptions& opts) {
  HclResult out;
  auto fail = [&](const SnpVerdict& v) {
    out.error = v.error;
    out.reason = v.reason;
    return out;
  };
  out.snp_result = snp::verify_report(r.snp, r.snp_report_raw, opts.verify);
  if (!out.snp_result.ok()) return fail(out.snp_result);
  if (opts.policy)
    if (auto v = snp::validate_report(r.snp, *opts.policy, out.snp_result.product); !v.ok()) return fail(v);
  if (auto v = verify_runtime_binding(r); !v.ok()) return fail(v);
  try {
    out.claims = parse_claims(r);
  } catch (const ParseError& e) {
    return fail(SnpVerdict::fail(SnpError::hcl_malformed, e.what()));
  }
  if (!ek_tpm.empty())
    if (auto v = check_hcl_ek(*out.claims, ek_tpm, opts.allow_missing_ek); !v.ok()) return fail(v);
  return out;
}

}  // namespace kl::azure
