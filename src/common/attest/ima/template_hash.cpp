#include "common/attest/ima/template_hash.hpp"

#include <algorithm>

#include "common/attest/ima/fast_hash.hpp"

namespace kl::ima {

EntryHashes hash_entry(const Entry& e, crypto::HashAlg log_alg, crypto::HashAlg bank) {
  EntryHashes h;
  const Bytes data = template_data(e);
  const std::size_t log_size = crypto::digest_size(log_alg);
  // Violation rule: the kernel logs zeros but extends all-FF (ToMToU / open-writers).
  const bool zero = e.template_hash.size() == log_size &&
                    std::all_of(e.template_hash.begin(), e.template_hash.end(), [](auto b) { return b == 0; });
  if (zero) {
    h.violation = true;
    h.template_hash_ok = true;
    h.pcr_template_hash.assign(crypto::digest_size(bank), 0xFF);
    return h;
  }
  const auto pcr = detail::fast_digest(bank, data);
  h.pcr_template_hash = pcr.to_bytes();
  if (log_alg == bank) {
    h.computed_log_hash = h.pcr_template_hash;
  } else {
    h.computed_log_hash = detail::fast_digest(log_alg, data).to_bytes();
  }
  h.template_hash_ok = h.computed_log_hash == e.template_hash;
  return h;
}

}  // namespace kl::ima
