// Evidence an agent serves besides its quote, built for tests: IMA ascii log lines (ima-ng) with the digests
// they extend into PCR 10, runtime policies made from such a log (as `keylime-policy create runtime` would),
// and the PCR extensions a UEFI event log stands for.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"

namespace kl::testing {

struct ImaLine {
  std::string text;          // "10 <sha1 template hash> ima-ng sha256:<file digest> <path>" (no newline)
  kl::Bytes sha256_extend;   // SHA-256 of the template data: what the kernel extends into the sha256 bank
  std::string path;
  std::string file_digest_hex;
};

// An ima-ng entry for `path` whose file content is `content` (file digest SHA-256, template hash SHA-1 as the
// kernel's default ima_hash).
ImaLine ima_ng_line(const std::string& path, std::string_view content);
// The same with a given file digest (lowercase hex SHA-256).
ImaLine ima_ng_line_digest(const std::string& path, const std::string& file_digest_hex);

// An ascii log line as the kernel wrote it (any supported template): what it extends into the sha256 bank.
// Throws kl::ParseError for a line that does not parse.
ImaLine ima_line_from_text(std::string_view line);

// A schema-complete runtime policy (format version 1) allowing exactly the files of `lines`
// (boot_aggregate lines included), log_hash_alg sha1.
nlohmann::json runtime_policy_for(const std::vector<ImaLine>& lines);

// The (PCR, SHA-256 digest) extensions a binary UEFI event log records, in order (EV_NO_ACTION skipped), i.e.
// what to extend into a TPM so that replaying the log reproduces its PCRs. Throws kl::ParseError.
std::vector<std::pair<unsigned, kl::Bytes>> boot_log_extensions(kl::ByteView event_log);

}  // namespace kl::testing
