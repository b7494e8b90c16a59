// Per-agent incremental IMA state (verification.md §3.6), small and serialisable so the verifier
// persists it and a restart does not replay every agent's whole log.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/keyring.hpp"

namespace kl::ima {

struct ImaState {
  std::uint64_t next_entry = 0;             // upstream next_ima_ml_entry: the next line index to ask for
  std::optional<Bytes> pcr10;               // running PCR 10 at the last matched line (nullopt => initial)
  std::optional<crypto::HashAlg> bank;      // bank of pcr10
  std::int64_t boottime = 0;
  ImaKeyrings learned_keyrings;             // keys learned from ima-buf entries
  std::optional<std::pair<std::int64_t, std::int64_t>> quote_progress;  // (match_line, log_length)

  // Upstream reset_ima_attestation(): next entry 0, PCR state cleared, boottime 0, learned keyrings
  // and quote_progress cleared.
  void reset();

  // {"next_ima_ml_entry", "pcr10" (hex|null), "bank" (name|null), "boottime",
  //  "learned_keyrings" (upstream ImaKeyrings.to_json: name -> keyring JSON string),
  //  "quote_progress" ([match, len]|null)}
  nlohmann::json to_json() const;
  // Throws kl::ParseError on a malformed document.
  static ImaState from_json(const nlohmann::json&);
};

}  // namespace kl::ima
