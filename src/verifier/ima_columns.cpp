#include "verifier/ima_columns.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/digest.hpp"

namespace kl::verifier {

using nlohmann::json;

ima::ImaState ima_state_from_row(const storage::VerifierAgent& row, spdlog::logger* log) {
  ima::ImaState s;
  s.next_entry = static_cast<std::uint64_t>(std::max<long long>(0, row.next_ima_ml_entry.value_or(0)));
  s.boottime = row.boottime.value_or(0);
  if (row.pcr10 && !row.pcr10->empty()) {
    const auto named = crypto::hash_from_name(row.hash_alg.value_or(""));
    if (named && crypto::digest_size(*named) == row.pcr10->size()) {
      s.bank = *named;
    } else {
      for (auto h : {crypto::HashAlg::sha1, crypto::HashAlg::sha256, crypto::HashAlg::sha384, crypto::HashAlg::sha512})
        if (crypto::digest_size(h) == row.pcr10->size()) s.bank = h;
    }
    if (s.bank) s.pcr10 = *row.pcr10;
  }
  if (!s.pcr10 && s.next_entry != 0) {
    // An offset without the PCR value it belongs to cannot be continued: replay the whole log.
    if (log)
      log->warn("Agent {}: stored next_ima_ml_entry {} has no usable pcr10; the next quote asks for the whole log",
                row.agent_id, s.next_entry);
    s.next_entry = 0;
  }
  if (row.learned_ima_keyrings) {
    try {
      const json j = json::parse(*row.learned_ima_keyrings);
      if (j.is_object()) s.learned_keyrings = ima::ImaKeyrings::from_json(j);
    } catch (const std::exception& e) {
      if (log)
        log->warn("Agent {}: stored learned_ima_keyrings unusable ({}), starting without", row.agent_id, e.what());
    }
  }
  return s;
}

void ima_state_to_row(const ima::ImaState& s, storage::VerifierAgent& row) {
  row.next_ima_ml_entry = static_cast<long long>(s.next_entry);
  row.boottime = s.boottime;
  if (s.pcr10) {
    row.pcr10 = *s.pcr10;
    row.ima_pcrs = "[10]";
  } else {
    row.pcr10.reset();
    row.ima_pcrs = "[]";
  }
  row.learned_ima_keyrings = s.learned_keyrings.to_json().dump();
}

}  // namespace kl::verifier
