// The agent's `quote` string (verification.md §1.1): "r" + B64(TPMS_ATTEST) + ":" + B64(TPMT_SIGNATURE)
// + ":" + B64(PCR blob). Parsing only; the parts are checked by verify_quote().
#pragma once
#include <string>
#include <string_view>

#include "common/attest/crypto/bytes.hpp"

namespace kl::quote {

struct QuoteParts {
  Bytes attest;     // marshalled TPMS_ATTEST (big-endian)
  Bytes signature;  // marshalled TPMT_SIGNATURE (big-endian)
  Bytes pcr_blob;   // tpm2-tools in-memory PCR dump (little-endian), see pcr_blob.hpp
};

// First character must be 'r' ("Invalid quote type <c>"); at least three ':'-separated tokens
// ("Quote is not compound!"); extra tokens are ignored, as Keylime does. Standard base64 with
// padding; embedded whitespace is tolerated. Throws kl::ParseError: in pull mode Keylime lets this
// escape as an exception (internal.verifier.exception); one-shot paths report
// qoute_validation.invalid_quote. zlib-compressed parts (API 1.0 agents) are not supported.
QuoteParts parse_quote_string(std::string_view quote);

// Inverse, for software agents and tests.
std::string make_quote_string(const QuoteParts& parts);

}  // namespace kl::quote
