// SNP extended-report certificate table (spec §5.2): entries {GUID(16), offset u32 LE, length u32 LE}, ended by an
// all-zero entry; offsets are relative to the start of the table. Hosts append it after the report.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"

namespace kl::snp {

struct CertTable {
  std::optional<Bytes> vcek, vlek, ask, ark;  // DER as stored in the table
  std::vector<std::string> other_guids;       // entries with GUIDs we do not know (kept for messages)
};

// Throws kl::ParseError when the table is malformed (no terminator, entry out of bounds, duplicate GUID).
CertTable parse_cert_table(ByteView table);

// Builds a table (terminator included) from the given certificates; for tests and fakes.
Bytes build_cert_table(const CertTable& t);

}  // namespace kl::snp
