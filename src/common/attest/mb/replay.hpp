// PCR replay of a parsed event log (verification.md §5.3) and the comparison with quoted PCRs that the
// verifier's check_pcrs does for measured boot (component measured_boot, ids invalid_pcr_<n>).
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/mb/event_log.hpp"
#include "common/attest/quote/failure.hpp"

namespace kl::mb {

using PcrBank = std::map<std::uint32_t, Bytes>;               // PCR index -> value
using PcrBanks = std::map<crypto::HashAlg, PcrBank>;          // only banks with a known hash

// For every event except EV_NO_ACTION and every digest of a known bank: PCR = H(PCR || digest), starting
// from zeros, except PCR 0 after an EV_EFI_HCRTM_EVENT (0...04) or a StartupLocality EV_NO_ACTION with
// locality > 0 (0...0<locality>), as tpm2_eventlog >= 5.5 and a real TPM do. (tpm2-tools 5.4, which produced
// the YAML samples, instead extended the locality event's zero digest; see docs.) Only PCRs that the log
// touches appear. Keylime (and this) never re-hash event data.
PcrBanks replay_pcrs(const EventLog& log);

// Keylime's boot aggregates for one bank: for k in (8, 10), H(pcr0 || ... || pcr(k-1)) as lowercase hex;
// skipped when a PCR below k is absent from the bank.
std::vector<std::string> boot_aggregates(crypto::HashAlg alg, const PcrBank& bank);

// Quoted PCR values as the quote check hands them over: PCR -> lowercase hex.
using QuotedPcrs = std::map<std::uint32_t, std::string>;

// Keylime's measured-boot PCR comparison: for each PCR in `pcrs_to_check` that is also quoted, the log value
// (0 when absent) and the quoted value are compared as hex with leading zeros stripped; a mismatch adds
// measured_boot.invalid_pcr_<n> {"context": "SHA256 boot event log PCR value does not match", "got": quoted,
// "expected": log hex} (recoverable). Returns the PCRs it compared (to add to the caller's "done" set).
std::set<std::uint32_t> match_quoted_pcrs(const PcrBank& replayed, const QuotedPcrs& quoted,
                                          const std::set<std::uint32_t>& pcrs_to_check, Failure& mb_failure);

}  // namespace kl::mb
