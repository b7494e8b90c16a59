// The incremental IMA state (verification.md §3.6) in upstream's verifiermain columns, so that a verifier restart
// resumes every agent where it stopped and an upstream cv_data.sqlite works in place: boottime (INTEGER),
// next_ima_ml_entry (INTEGER), ima_pcrs (JSON list: [10] once PCR 10 was matched, else []), pcr10 (BLOB: the raw
// running PCR value at the last matched line), learned_ima_keyrings (JSON object: keyring name -> keyring JSON
// string). The bank is not stored upstream: it is the quotes' hash_alg, checked against the value's size.
// quote_progress is kept in memory only, as upstream does.
#pragma once
#include <spdlog/spdlog.h>

#include "common/attest/ima/ima_state.hpp"
#include "common/service/storage/verifier_store.hpp"

namespace kl::verifier {

// Tolerant: an unusable column is logged (when `log` is set) and read as "nothing stored"; an offset whose
// PCR value is missing restarts from entry 0.
ima::ImaState ima_state_from_row(const storage::VerifierAgent& row, spdlog::logger* log);
void ima_state_to_row(const ima::ImaState& state, storage::VerifierAgent& row);

}  // namespace kl::verifier
