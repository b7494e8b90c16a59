#include "agent/evidence_logs.hpp"

#include <algorithm>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/measurement_list.hpp"
#include "common/attest/mb/event_log.hpp"

namespace kl::testing {

using kl::crypto::HashAlg;

ImaLine ima_ng_line_digest(const std::string& path, const std::string& file_digest_hex) {
  kl::ima::Entry e;
  e.pcr = "10";
  e.kind = kl::ima::Template::ima_ng;
  e.digest.algorithm = "sha256";
  e.digest.hash = kl::hex_decode(file_digest_hex).value();
  e.name = path;
  const kl::Bytes data = kl::ima::template_data(e);
  ImaLine l;
  l.text = "10 " + kl::hex_encode(kl::crypto::digest(HashAlg::sha1, data)) + " ima-ng sha256:" + file_digest_hex + " " + path;
  l.sha256_extend = kl::crypto::digest(HashAlg::sha256, data);
  l.path = path;
  l.file_digest_hex = file_digest_hex;
  return l;
}

ImaLine ima_line_from_text(std::string_view text) {
  const kl::ima::Entry e = kl::ima::parse_entry(text);
  ImaLine l;
  l.text = std::string(text);
  l.sha256_extend = kl::crypto::digest(HashAlg::sha256, kl::ima::template_data(e));
  l.path = e.name;
  l.file_digest_hex = kl::hex_encode(e.digest.hash);
  return l;
}

ImaLine ima_ng_line(const std::string& path, std::string_view content) {
  return ima_ng_line_digest(path, kl::hex_encode(kl::crypto::digest(HashAlg::sha256, kl::as_bytes(content))));
}

nlohmann::json runtime_policy_for(const std::vector<ImaLine>& lines) {
  nlohmann::json digests = nlohmann::json::object();
  for (const auto& l : lines) {
    auto& list = digests[l.path];
    if (!list.is_array()) list = nlohmann::json::array();
    if (std::find(list.begin(), list.end(), l.file_digest_hex) == list.end()) list.push_back(l.file_digest_hex);
  }
  return nlohmann::json{{"meta", {{"version", 1}, {"generator", 3}, {"timestamp", "2026-12-04 00:00:00"}}},
                        {"release", 0},
                        {"digests", digests},
                        {"excludes", nlohmann::json::array()},
                        {"keyrings", nlohmann::json::object()},
                        {"ima", {{"ignored_keyrings", nlohmann::json::array()},
                                 {"log_hash_alg", "sha1"},
                                 {"dm_policy", nullptr}}},
                        {"ima-buf", nlohmann::json::object()},
                        {"verification-keys", ""}};
}

std::vector<std::pair<unsigned, kl::Bytes>> boot_log_extensions(kl::ByteView event_log) {
  const auto log = kl::mb::parse_event_log(event_log);
  std::vector<std::pair<unsigned, kl::Bytes>> out;
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    const auto& e = log.events[i];
    if (e.type == kl::mb::ev::kNoAction) continue;
    for (const auto& d : e.digests)
      if (d.alg == HashAlg::sha256) out.emplace_back(e.pcr, d.digest);
  }
  return out;
}

}  // namespace kl::testing
