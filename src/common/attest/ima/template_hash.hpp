// Template hash check and the value extended into PCR 10 for one entry (verification.md §3.3),
// including the violation rule (all-zero column 2 => all-0xFF).
#pragma once
#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/measurement_list.hpp"

namespace kl::ima {

struct EntryHashes {
  Bytes pcr_template_hash;   // H_bank(template data), or all-FF (bank size) for a violation
  bool violation = false;    // column 2 was all-zero of the log hash size (ToMToU / open-writers)
  bool template_hash_ok = false;  // column 2 == H_log(template data); true for violations
  Bytes computed_log_hash;   // H_log(template data) (empty for violations)
};

// log_alg = runtime policy `ima.log_hash_alg` (column 2), bank = the quote's PCR bank.
EntryHashes hash_entry(const Entry&, crypto::HashAlg log_alg, crypto::HashAlg bank);

}  // namespace kl::ima
