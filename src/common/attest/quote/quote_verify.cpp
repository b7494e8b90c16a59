#include "common/attest/quote/quote_verify.hpp"

#include <algorithm>
#include <cstdio>

#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/signature.hpp"

namespace kl::quote {
namespace {

std::string hex_id(std::uint16_t id) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%#x", id);
  return buf;
}

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

QuoteCheck fail(std::string error) {
  QuoteCheck c;
  c.error = std::move(error);
  return c;
}

bool nonce_matches(ByteView extra_data, std::string_view nonce) {
  if (equal(extra_data, as_bytes(nonce))) return true;
  // Push mode hands the nonce over base64-encoded; Keylime falls back to decoding it.
  auto decoded = base64_decode(nonce);
  if (!decoded) decoded = base64_decode_ignoring_whitespace(nonce);
  return decoded && equal(extra_data, *decoded);
}

}  // namespace

Failure QuoteCheck::to_failure() const {
  Failure f(Component::quote_validation);
  if (!ok()) f.add_event("quote_validation", nlohmann::json{{"message", "Quote data validation"}, {"error", error}}, false);
  return f;
}

QuoteCheck verify_quote(const QuoteParts& parts, std::string_view nonce, std::string_view expected_hash_alg,
                        EVP_PKEY* ak) {
  if (!ak) return fail("No AK to verify the quote with");
  const ByteView sigblob = parts.signature;
  if (sigblob.size() < 4) return fail("TPMT_SIGNATURE truncated");
  const std::uint16_t sig_alg = static_cast<std::uint16_t>((sigblob[0] << 8) | sigblob[1]);
  const std::uint16_t hash_alg = static_cast<std::uint16_t>((sigblob[2] << 8) | sigblob[3]);

  // Quotes are only accepted as RSASSA from RSA AKs and ECDSA from EC AKs (RSAPSS is refused even if
  // the agent's sign_alg list would allow it).
  const int key_type = EVP_PKEY_get_base_id(ak);
  if (key_type == EVP_PKEY_RSA) {
    if (sig_alg != tpm::kAlgRsassa)
      return fail("Unsupported quote signature algorithm '" + hex_id(sig_alg) + "' for RSA keys");
  } else if (key_type == EVP_PKEY_EC) {
    if (sig_alg != tpm::kAlgEcdsa)
      return fail("Unsupported quote signature algorithm '" + hex_id(sig_alg) + "' for EC keys");
  } else {
    return fail("Unsupported key type for the AK");
  }

  tpm::Signature sig;
  try {
    sig = tpm::parse_signature(sigblob);
  } catch (const ParseError& e) {
    return fail(e.what());
  }

  auto hash = crypto::hash_from_tpm_alg(hash_alg);
  if (!hash || *hash == crypto::HashAlg::sm3_256)
    return fail("Unsupported hash with id " + hex_id(hash_alg) + " in signature blob");
  if (crypto::hash_name(*hash) != expected_hash_alg)
    return fail("Quote was expected to use " + std::string(expected_hash_alg) + " but used " +
                std::string(crypto::hash_name(*hash)) + " instead");

  // Keylime's text for this case is empty (InvalidSignature has no message), which its caller takes for
  // success; we report a real reason instead.
  if (!tpm::verify_signature(ak, sig, parts.attest)) return fail("The quote's signature does not verify with the AK");

  VerifiedQuote q;
  try {
    q.attest = tpm::parse_attest(parts.attest);
  } catch (const ParseError& e) {
    return fail(e.what());
  }
  if (q.attest.magic != tpm::kTpmGeneratedValue) return fail("TPMS_ATTEST magic is not TPM_GENERATED_VALUE");
  if (q.attest.type != tpm::kStAttestQuote) return fail("TPMS_ATTEST type is not TPM_ST_ATTEST_QUOTE");

  if (!nonce_matches(q.attest.extra_data, nonce))
    return fail("The nonce from the attestation differs from the expected nonce");

  PcrBank bank;
  try {
    bank = hash_pcr_bank(parse_pcr_blob(parts.pcr_blob), hash_alg);
  } catch (const ParseError& e) {
    return fail(e.what());
  }
  if (!equal(bank.digest, q.attest.pcr_digest))
    return fail("The digest used for quoting is different than the one that was calculated");

  q.hash_alg = *hash;
  q.pcrs = std::move(bank.pcrs);
  q.clock = q.attest.clock;
  QuoteCheck ok;
  ok.quote = std::move(q);
  return ok;
}

std::map<std::uint32_t, std::string> pcrs_hex(const PcrValues& pcrs) {
  std::map<std::uint32_t, std::string> out;
  for (const auto& [pcr, v] : pcrs) out[pcr] = hex_encode(v);
  return out;
}

}  // namespace kl::quote
