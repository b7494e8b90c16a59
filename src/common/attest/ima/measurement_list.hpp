// The ASCII IMA measurement list (ascii_runtime_measurements): line grammar and template data
// bytes for the `ima`, `ima-ng`, `ima-sig` and `ima-buf` templates (verification.md §3.1-3.2).
// Parsing only: no hashing of the PCR bank, no policy.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/attest/crypto/bytes.hpp"

namespace kl::ima {

enum class Template { ima, ima_ng, ima_sig, ima_buf };
std::string_view template_name(Template);

// `d` / `d-ng`: "<algo>:<hex>", or bare hex (20 bytes => "sha1", 16 => "md5").
struct Digest {
  std::string algorithm;  // as written ("sha256", "sm3_256", even unknown names)
  Bytes hash;
};

struct Entry {
  std::string pcr;          // column 1 as written (checked against "10" by validation, not here)
  Bytes template_hash;      // column 2 decoded
  Template kind = Template::ima_ng;
  Digest digest;
  std::string name;         // `n` / `n-ng`: file path or (ima-buf) buffer name
  // ima-sig: only a well-formed signature_v2 blob (9 + u16 size == length); a malformed third
  // token is treated as absent, as upstream does.
  std::optional<Bytes> signature;
  Bytes buffer;             // ima-buf `buf`
};

// One line (without its '\n'). Throws kl::ParseError with the reason: fewer than 4 tokens,
// non-hex template hash, unknown template (`ima-modsig`, `ima-ngv2`, ...), bad digest, wrong
// token count for the template.
Entry parse_entry(std::string_view line);
// Same, into an existing Entry whose buffers are reused (no allocation per line in a replay loop).
// On ParseError `out` holds unspecified partial content.
void parse_entry(std::string_view line, Entry& out);

// Template data bytes as the kernel hashes them (§3.2).
Bytes template_data(const Entry&);
void template_data(const Entry&, Bytes& out);  // into a reused buffer (cleared first)

// A list split as upstream does: on '\n', only '\n' removed, empty lines skipped but counted
// in `index` (0-based line number). A line that does not parse keeps its error text.
struct ListLine {
  std::size_t index = 0;
  std::string_view text;        // points into the caller's list text
  std::optional<Entry> entry;   // nullopt => parse error
  std::string error;            // parse error reason when entry is nullopt
};
std::vector<ListLine> parse_list(std::string_view list_text);

// Python's bytes.__str__ (e.g. "b'\\x01ab'"), used verbatim by upstream in the ima_hash event.
std::string python_bytes_repr(ByteView);

}  // namespace kl::ima
