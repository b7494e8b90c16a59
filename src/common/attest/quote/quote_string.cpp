#include "common/attest/quote/quote_string.hpp"

#include <vector>

#include "common/attest/parse_error.hpp"

namespace kl::quote {
namespace {

Bytes decode_part(std::string_view text, const char* what) {
  auto b = base64_decode(text);
  if (!b) b = base64_decode_ignoring_whitespace(text);
  if (!b) throw ParseError(std::string("quote: ") + what + " is not valid base64");
  return std::move(*b);
}

}  // namespace

QuoteParts parse_quote_string(std::string_view quote) {
  if (quote.empty()) throw ParseError("Invalid quote type (empty quote)");
  if (quote[0] != 'r') throw ParseError(std::string("Invalid quote type ") + quote[0]);
  quote.remove_prefix(1);

  std::vector<std::string_view> tokens;
  for (std::size_t start = 0;;) {
    std::size_t colon = quote.find(':', start);
    tokens.push_back(quote.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos || tokens.size() == 3) break;
    start = colon + 1;
  }
  if (tokens.size() < 3) throw ParseError("Quote is not compound!");
  // Keylime ignores tokens after the third; the third ends at the next ':' if there is one.
  std::string_view pcr = tokens[2];
  if (auto c = pcr.find(':'); c != std::string_view::npos) pcr = pcr.substr(0, c);

  QuoteParts parts;
  parts.attest = decode_part(tokens[0], "TPMS_ATTEST");
  parts.signature = decode_part(tokens[1], "TPMT_SIGNATURE");
  parts.pcr_blob = decode_part(pcr, "PCR blob");
  return parts;
}

std::string make_quote_string(const QuoteParts& parts) {
  return "r" + base64_encode(parts.attest) + ":" + base64_encode(parts.signature) + ":" +
         base64_encode(parts.pcr_blob);
}

}  // namespace kl::quote
