#include "common/attest/mb/replay.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace kl::mb {

PcrBanks replay_pcrs(const EventLog& log) {
  static constexpr char kLocalitySig[16] = {'S', 't', 'a', 'r', 't', 'u', 'p', 'L', 'o', 'c',
                                            'a', 'l', 'i', 't', 'y', '\0'};
  PcrBanks banks;
  bool found_hcrtm = false;
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    const auto& e = log.events[i];
    if (e.pcr == 0 && e.type == ev::kEfiHcrtmEvent) found_hcrtm = true;
    // PCR 0 does not always start from zeros (TPM library spec part 1, 34.3): an H-CRTM sequence leaves
    // 0...04, a startup from locality 3 or 4 leaves 0...0<locality>. Same rule as tpm2_eventlog >= 5.5.
    std::optional<std::uint8_t> set_last;
    if (e.pcr == 0 && e.type == ev::kEfiHcrtmEvent) set_last = 0x04;
    else if (e.pcr == 0 && e.type == ev::kNoAction && !found_hcrtm && e.data.size() >= 17 &&
             std::memcmp(e.data.data(), kLocalitySig, 16) == 0 && e.data[16] > 0)
      set_last = e.data[16];
    for (const auto& d : e.digests) {
      if (!d.alg) continue;
      auto& bank = banks[*d.alg];
      auto it = bank.find(e.pcr);
      if (it == bank.end()) it = bank.emplace(e.pcr, Bytes(crypto::digest_size(*d.alg), 0)).first;
      if (set_last) it->second.back() = *set_last;
      if (e.type == ev::kNoAction) continue;  // never extended
      Bytes buf = it->second;
      buf.insert(buf.end(), d.digest.begin(), d.digest.end());
      it->second = crypto::digest(*d.alg, buf);
    }
  }
  return banks;
}

std::vector<std::string> boot_aggregates(crypto::HashAlg alg, const PcrBank& bank) {
  std::vector<std::string> out;
  for (std::uint32_t k : {8u, 10u}) {
    Bytes buf;
    bool complete = true;
    for (std::uint32_t p = 0; p < k && complete; ++p) {
      auto it = bank.find(p);
      if (it == bank.end()) complete = false;
      else buf.insert(buf.end(), it->second.begin(), it->second.end());
    }
    if (complete) out.push_back(hex_encode(crypto::digest(alg, buf)));
  }
  return out;
}

namespace {
std::string lstrip0(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto p = s.find_first_not_of('0');
  return p == std::string::npos ? std::string() : s.substr(p);
}
}  // namespace

std::set<std::uint32_t> match_quoted_pcrs(const PcrBank& replayed, const QuotedPcrs& quoted,
                                          const std::set<std::uint32_t>& pcrs_to_check, Failure& mb_failure) {
  std::set<std::uint32_t> compared;
  for (std::uint32_t pcr : pcrs_to_check) {
    auto q = quoted.find(pcr);
    if (q == quoted.end()) continue;
    auto it = replayed.find(pcr);
    // Keylime: hex(int) of the log value, 0 when the log never touched the PCR.
    std::string expected = it == replayed.end() ? "0" : lstrip0(hex_encode(it->second));
    if (expected.empty()) expected = "0";
    if (lstrip0(expected) != lstrip0(q->second)) {
      mb_failure.add_event("invalid_pcr_" + std::to_string(pcr),
                           nlohmann::json{{"context", "SHA256 boot event log PCR value does not match"},
                                          {"got", q->second},
                                          {"expected", expected}},
                           true);
    }
    compared.insert(pcr);
  }
  return compared;
}

}  // namespace kl::mb
