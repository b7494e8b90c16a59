#include "common/attest/ima/replay.hpp"

#include <algorithm>

#include "common/attest/ima/fast_hash.hpp"

namespace kl::ima {

Bytes initial_pcr10(crypto::HashAlg bank) { return Bytes(crypto::digest_size(bank), 0); }

std::vector<std::optional<EntryHashes>> hash_entries(const std::vector<ListLine>& lines, crypto::HashAlg log_alg,
                                                     crypto::HashAlg bank) {
  std::vector<std::optional<EntryHashes>> out;
  out.reserve(lines.size());
  for (const auto& l : lines) {
    if (l.entry) out.emplace_back(hash_entry(*l.entry, log_alg, bank));
    else out.emplace_back(std::nullopt);
  }
  return out;
}

ReplayResult replay_pcr10(const std::vector<ListLine>& lines, const std::vector<std::optional<EntryHashes>>& hashes,
                          crypto::HashAlg bank, ByteView start, std::optional<ByteView> quoted) {
  ReplayResult r;
  detail::DigestValue running;
  running.size = start.size();
  std::copy(start.begin(), start.end(), running.bytes.begin());
  auto equals_quoted = [&]() {
    return quoted && quoted->size() == running.size && std::equal(quoted->begin(), quoted->end(), running.bytes.begin());
  };
  if (equals_quoted()) {
    r.match_line = 0;
    r.value_at_match = running.to_bytes();
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    ++r.log_length;
    if (i >= hashes.size() || !hashes[i]) continue;  // unparsable lines are not extended
    running = detail::fast_digest2(bank, running.view(), hashes[i]->pcr_template_hash);
    if (!r.match_line && equals_quoted()) {
      r.match_line = lines[i].index + 1;
      r.value_at_match = running.to_bytes();
    }
  }
  r.final_value = running.to_bytes();
  return r;
}

ReplayResult replay_pcr10(std::string_view list_text, crypto::HashAlg bank, ByteView start,
                          std::optional<ByteView> quoted, crypto::HashAlg log_alg) {
  auto lines = parse_list(list_text);
  auto hashes = hash_entries(lines, log_alg, bank);
  return replay_pcr10(lines, hashes, bank, start, quoted);
}

bool check_quote_progress(std::optional<std::pair<std::int64_t, std::int64_t>>& progress, std::int64_t match_line,
                          std::int64_t log_length) {
  if (!progress) {
    progress = std::make_pair(match_line, log_length);
    return true;
  }
  auto [prev_match, prev_len] = *progress;
  progress = std::make_pair(match_line, log_length);
  if (match_line == log_length) return true;
  const std::int64_t prev_lag = prev_len - prev_match;
  return !(prev_lag > 0 && match_line < prev_lag);
}

OffsetDecision check_ima_offset(ImaState& state, std::uint64_t got_entry, std::int64_t boottime) {
  if (got_entry == 0) {
    state.reset();
    state.boottime = boottime;
    return OffsetDecision::full_replay;
  }
  if (got_entry != state.next_entry) {
    state.boottime = boottime;  // upstream stores it and carries on with the (failing) round
    return OffsetDecision::entry_mismatch;
  }
  if (state.boottime != boottime) {
    state.reset();
    return OffsetDecision::rebooted;
  }
  return OffsetDecision::incremental;
}

}  // namespace kl::ima
