// PCR 10 replay of a parsed measurement list in one bank, incrementally from a running value, and
// the match against the quoted PCR 10 as upstream does (verification.md §3.3-3.4, §3.6).
// Cryptography only: no policy here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/ima_state.hpp"
#include "common/attest/ima/measurement_list.hpp"
#include "common/attest/ima/template_hash.hpp"

namespace kl::ima {

// PCR 10 after reset: all zeros of the bank size.
Bytes initial_pcr10(crypto::HashAlg bank);

// Hashes of every line (nullopt for lines that did not parse; those are not extended).
std::vector<std::optional<EntryHashes>> hash_entries(const std::vector<ListLine>& lines, crypto::HashAlg log_alg,
                                                     crypto::HashAlg bank);

struct ReplayResult {
  Bytes final_value;                      // running PCR after every parsed line
  std::optional<std::size_t> match_line;  // upstream pcr_match_line: 0 = start value matched,
                                          // n = matched after the line with index n-1
  Bytes value_at_match;                   // running value at the match (empty if no match)
  std::size_t log_length = 0;             // non-empty lines
  bool matched() const { return match_line.has_value(); }
};

// R = H(R || pcr_template_hash) per parsed line, starting from `start`. With `quoted`, the first
// position where R equals it (before any line, then after each line) is remembered; later lines
// are still replayed (a quote may lag the log: prefix match). Without `quoted` nothing is matched.
ReplayResult replay_pcr10(const std::vector<ListLine>& lines, const std::vector<std::optional<EntryHashes>>& hashes,
                          crypto::HashAlg bank, ByteView start, std::optional<ByteView> quoted);

// Convenience for tools and tests: parse + hash + replay a list text.
ReplayResult replay_pcr10(std::string_view list_text, crypto::HashAlg bank, ByteView start,
                          std::optional<ByteView> quoted, crypto::HashAlg log_alg = crypto::HashAlg::sha1);

// Upstream check_quote_progress: records (match_line, log_length) in `progress` and returns false
// when the previous round lagged (prev_len - prev_match > 0) and this match_line is smaller than
// that lag, unless the quote caught up with the whole log.
bool check_quote_progress(std::optional<std::pair<std::int64_t, std::int64_t>>& progress, std::int64_t match_line,
                          std::int64_t log_length);

// The agent's `ima_measurement_list_entry` / `boottime` against the saved state (§0 step 5).
enum class OffsetDecision {
  full_replay,     // entry 0: state reset, replay from zeros
  incremental,     // entry == next_entry and same boottime: continue from the saved PCR
  entry_mismatch,  // qoute_validation.invalid_ima_entry_nb (irrecoverable upstream)
  rebooted,        // entry == next_entry but another boottime: state reset (upstream then skips
                   // the round; the verifier should instead re-request the full log)
};
// Applies upstream's state changes (reset on 0 / reboot; the new boottime stored except on reboot).
OffsetDecision check_ima_offset(ImaState& state, std::uint64_t got_entry, std::int64_t boottime);

}  // namespace kl::ima
