// Cryptographic check of a quote (verification.md §1.3-§1.5), in Keylime's order:
// signature scheme vs AK type -> hash algorithm -> signature over H(TPMS_ATTEST) -> TPMS_ATTEST magic/type
// -> nonce -> PCR digest. No policy here: see tpm_policy.hpp and clock_check.hpp.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/quote/failure.hpp"
#include "common/attest/quote/pcr_blob.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/tpm/attest.hpp"

namespace kl::quote {

struct VerifiedQuote {
  tpm::Attest attest;
  crypto::HashAlg hash_alg = crypto::HashAlg::sha256;  // the quote's (= signature's) hash
  PcrValues pcrs;                                       // values of the quoted bank
  tpm::ClockInfo clock;
};

struct QuoteCheck {
  std::optional<VerifiedQuote> quote;  // set iff every check passed
  std::string error;                   // otherwise the reason (Keylime's wording where it has one)

  bool ok() const { return quote.has_value(); }
  // qoute_validation.quote_validation {"message": "Quote data validation", "error": <error>}, irrecoverable.
  Failure to_failure() const;
};

// nonce: the string the verifier sent; extraData must equal its UTF-8 bytes or, as a fallback, its
//        base64 decoding (push mode sends base64 nonces).
// expected_hash_alg: the agent-reported `hash_alg` ("sha256", ...); must name the signature's hash.
// ak: the registrar's AK (see tpm::public_key). RSA AK => RSASSA only, EC AK => ECDSA only.
// Never throws for bad evidence; malformed parts give an error text.
QuoteCheck verify_quote(const QuoteParts& parts, std::string_view nonce, std::string_view expected_hash_alg,
                        EVP_PKEY* ak);

// PCR values as Keylime reports and compares them: lowercase hex, no prefix.
std::map<std::uint32_t, std::string> pcrs_hex(const PcrValues& pcrs);

}  // namespace kl::quote
