#include "common/attest/mb/parsed.hpp"

#include <cstdio>
#include <cstring>
#include <regex>

#include "common/attest/mb/device_path.hpp"
#include "common/attest/mb/text_codec.hpp"

namespace kl::mb {
namespace {

using nlohmann::json;
using detail::le16;
using detail::le32;
using detail::le64;

std::string alg_name(std::uint16_t id) {
  if (auto alg = crypto::hash_from_tpm_alg(id)) return std::string(crypto::hash_name(*alg));
  char buf[12];
  std::snprintf(buf, sizeof buf, "0x%04x", id);
  return buf;
}

// Text the way tpm2_eventlog prints "%.*s": up to the first NUL.
std::string c_text(ByteView d) {
  const void* nul = std::memchr(d.data(), 0, d.size());
  std::size_t n = nul ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - d.data()) : d.size();
  return detail::to_json_text(d.subspan(0, n));
}

// An escaped string field after Keylime's unescaping: the original bytes minus one trailing NUL.
std::string unescaped_string(ByteView d) {
  if (!d.empty() && d.back() == 0) d = d.subspan(0, d.size() - 1);
  return detail::to_json_text(d);
}

// EFI_SIGNATURE_LIST sequence (PK/KEK/db/dbx). Lists that do not fit are left out, as tpm2_eventlog stops at
// the first inconsistent one.
json signature_lists(ByteView d) {
  json lists = json::array();
  std::size_t pos = 0;
  while (pos + 28 <= d.size()) {
    const std::uint8_t* h = d.data() + pos;
    std::uint32_t list_size = le32(h + 16), header_size = le32(h + 20), sig_size = le32(h + 24);
    if (sig_size < 16) break;
    if (list_size < 28 || header_size > list_size - 28 || list_size > d.size() - pos) break;
    std::uint32_t body = list_size - 28 - header_size;
    if (body % sig_size != 0) break;
    json keys = json::array();
    std::size_t sp = pos + 28 + header_size;
    keys.get_ref<json::array_t&>().reserve(body / sig_size);
    for (std::uint32_t i = 0; i < body / sig_size; ++i, sp += sig_size) {
      json key = json::object();
      key["SignatureOwner"] = guid_to_string(d.subspan(sp, 16));
      key["SignatureData"] = hex_encode(d.subspan(sp + 16, sig_size - 16));
      keys.push_back(std::move(key));
    }
    lists.push_back({{"SignatureType", guid_to_string(d.subspan(pos, 16))},
                     {"SignatureListSize", list_size},
                     {"SignatureHeaderSize", header_size},
                     {"SignatureSize", sig_size},
                     {"Keys", std::move(keys)}});
    pos += list_size;
  }
  return lists;
}

// Keylime's vendor_db enrichment: GUID, then a DER certificate (30 82 LL LL) found within 100 bytes.
json vendor_db_signatures(ByteView b) {
  json sigs = json::array();
  std::size_t off = 0;
  while (off + 16 < b.size()) {
    std::size_t search_end = std::min(off + 16 + 100, b.size() >= 2 ? b.size() - 2 : 0);
    std::optional<std::size_t> start;
    for (std::size_t i = off + 16; i < search_end; ++i)
      if (b[i] == 0x30 && b[i + 1] == 0x82) {
        start = i;
        break;
      }
    if (!start || *start + 4 > b.size()) break;
    std::size_t end = *start + 4 + ((static_cast<std::size_t>(b[*start + 2]) << 8) | b[*start + 3]);
    if (end > b.size()) break;
    sigs.push_back({{"SignatureOwner", guid_to_string(b.subspan(off, 16))},
                    {"SignatureData", hex_encode(b.subspan(off + 16, end - off - 16))}});
    off = end;
  }
  return sigs;
}

json yes_no(ByteView v) { return json{{"Enabled", (!v.empty() && v[0] != 0) ? "Yes" : "No"}}; }

bool is_boot_option_name(const std::string& n) {
  if (n.size() != 8 || n.compare(0, 4, "Boot") != 0) return false;
  for (std::size_t i = 4; i < 8; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(n[i]))) return false;
  return true;
}

json load_option(ByteView v) {
  if (v.size() < 6) return hex_encode(v);
  json o;
  o["Enabled"] = (le32(v.data()) & 1) ? "Yes" : "No";
  std::uint16_t fpl = le16(v.data() + 4);
  o["FilePathListLength"] = fpl;
  std::size_t pos = 6;
  std::string desc;
  std::size_t units = 0;
  while (pos + 2 <= v.size() && le16(v.data() + pos) != 0) {
    pos += 2;
    ++units;
  }
  desc = detail::utf16le_to_utf8(v.subspan(6), units, true);
  if (pos + 2 <= v.size()) pos += 2;  // the NUL terminator
  o["Description"] = desc;
  ByteView dp = v.subspan(pos);
  if (dp.size() > fpl) dp = dp.subspan(0, fpl);
  o["DevicePath"] = device_path_to_text(dp);
  return o;
}

json decode_variable(const LogEvent& e) {
  ByteView d(e.data);
  if (d.size() < 32) return hex_encode(d);
  std::uint64_t name_len = le64(d.data() + 16), data_len = le64(d.data() + 24);
  if (name_len > (d.size() - 32) / 2) return hex_encode(d);
  json o;
  o["VariableName"] = guid_to_string(d);
  o["UnicodeNameLength"] = name_len;
  o["VariableDataLength"] = data_len;
  std::string name = detail::utf16le_to_utf8(d.subspan(32), static_cast<std::size_t>(name_len), false);
  o["UnicodeName"] = name;
  ByteView rest = d.subspan(32 + static_cast<std::size_t>(name_len) * 2);
  // A VariableDataLength larger than the event is a firmware bug tpm2_eventlog tolerates; read what is there.
  ByteView v = data_len < rest.size() ? rest.subspan(0, static_cast<std::size_t>(data_len)) : rest;

  json value;
  bool decoded = false;
  if (e.type == ev::kEfiVariableDriverConfig) {
    if (name == "PK" || name == "KEK" || name == "db" || name == "dbx") {
      value = signature_lists(v);
      decoded = true;
    } else if (name == "SecureBoot" && v.size() <= 1) {
      value = yes_no(v);
      decoded = true;
    }
  } else if (e.type == ev::kEfiVariableAuthority) {
    if (name == "MokListTrusted" && v.size() <= 1) {
      value = yes_no(v);
      decoded = true;
    } else if (name == "vendor_db") {
      value = vendor_db_signatures(v);
      if (value.empty() && v.size() >= 16)
        value = json::array({{{"SignatureOwner", guid_to_string(v)}, {"SignatureData", hex_encode(v.subspan(16))}}});
      decoded = !value.empty();
    } else if ((name == "db" || name == "Shim") && v.size() >= 16) {
      value = json::array({{{"SignatureOwner", guid_to_string(v)}, {"SignatureData", hex_encode(v.subspan(16))}}});
      decoded = true;
    } else if (name == "SbatLevel") {
      value = json{{"String", unescaped_string(v)}};
      decoded = true;
    }
  } else if (e.type == ev::kEfiVariableBoot || e.type == ev::kEfiVariableBoot2) {
    if (name == "BootOrder" && v.size() % 2 == 0) {
      value = json::array();
      for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
        char buf[12];
        std::snprintf(buf, sizeof buf, "Boot%04x", le16(v.data() + i));
        value.push_back(buf);
      }
      decoded = true;
    } else if (is_boot_option_name(name)) {
      value = load_option(v);
      decoded = true;
    }
  }
  if (!decoded && data_len == 0) return o;  // tpm2_eventlog prints no VariableData for an empty value
  o["VariableData"] = decoded ? std::move(value) : json(hex_encode(v));
  return o;
}

json decode_image_load(ByteView d) {
  if (d.size() < 32) return hex_encode(d);
  json o;
  o["ImageLocationInMemory"] = le64(d.data());
  o["ImageLengthInMemory"] = le64(d.data() + 8);
  o["ImageLinkTimeAddress"] = le64(d.data() + 16);
  std::uint64_t dp_len = le64(d.data() + 24);
  o["LengthOfDevicePath"] = dp_len;
  ByteView dp = d.subspan(32);
  if (dp_len < dp.size()) dp = dp.subspan(0, static_cast<std::size_t>(dp_len));
  o["DevicePath"] = device_path_to_text(dp);
  return o;
}

json decode_gpt(ByteView d) {
  constexpr std::size_t kHeader = 92, kEntry = 128;
  if (d.size() < kHeader + 8) return hex_encode(d);
  std::uint64_t n = le64(d.data() + kHeader);
  std::size_t rest = d.size() - kHeader - 8;
  if (n != rest / kEntry || rest % kEntry != 0) return hex_encode(d);  // tpm2_eventlog rejects the mismatch
  const std::uint8_t* h = d.data();
  json header{{"Signature", c_text(d.subspan(0, 8))},
              {"Revision", le32(h + 8)},
              {"HeaderSize", le32(h + 12)},
              {"HeaderCRC32", le32(h + 16)},
              {"MyLBA", le64(h + 24)},
              {"AlternateLBA", le64(h + 32)},
              {"FirstUsableLBA", le64(h + 40)},
              {"LastUsableLBA", le64(h + 48)},
              {"DiskGUID", guid_to_string(d.subspan(56, 16))},
              {"PartitionEntryLBA", le64(h + 72)},
              {"NumberOfPartitionEntry", le32(h + 80)},
              {"SizeOfPartitionEntry", le32(h + 84)},
              {"PartitionEntryArrayCRC32", le32(h + 88)}};
  json parts = json::array();
  for (std::size_t i = 0; i < n; ++i) {
    ByteView p = d.subspan(kHeader + 8 + i * kEntry, kEntry);
    parts.push_back({{"PartitionTypeGUID", guid_to_string(p.subspan(0, 16))},
                     {"UniquePartitionGUID", guid_to_string(p.subspan(16, 16))},
                     {"StartingLBA", le64(p.data() + 32)},
                     {"EndingLBA", le64(p.data() + 40)},
                     {"Attributes", le64(p.data() + 48)},
                     {"PartitionName", detail::utf16le_to_utf8(p.subspan(56), 36, true)}});
  }
  return json{{"Header", std::move(header)}, {"NumberOfPartitions", n}, {"Partitions", std::move(parts)}};
}

json blob(ByteView d) {
  if (d.size() < 16) return hex_encode(d);
  return json{{"BlobBase", le64(d.data())}, {"BlobLength", le64(d.data() + 8)}};
}

json blob2(ByteView d) {
  if (d.empty()) return hex_encode(d);
  std::size_t n = d[0];
  if (d.size() < 1 + n + 16) return hex_encode(d);
  return json{{"BlobDescriptionSize", n},
              {"BlobDescription", hex_encode(d.subspan(1, n))},
              {"BlobBase", le64(d.data() + 1 + n)},
              {"BlobLength", le64(d.data() + 1 + n + 8)}};
}

}  // namespace

std::string guid_to_string(ByteView b) {
  // Data1..3 little-endian, Data4 as bytes. Written by hand: a dbx list formats hundreds of these per quote.
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    std::uint8_t v = b[static_cast<std::size_t>(kOrder[i])];
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

json decode_event_data(const LogEvent& e) {
  ByteView d(e.data);
  switch (e.type) {
    case ev::kEfiVariableDriverConfig:
    case ev::kEfiVariableBoot:
    case ev::kEfiVariableBoot2:
    case ev::kEfiVariableAuthority:
      return decode_variable(e);
    case ev::kPostCode:
      return d.size() == 16 ? blob(d) : json(c_text(d));
    case ev::kSCrtmContents:
    case ev::kEfiPlatformFirmwareBlob:
      return blob(d);
    case ev::kEfiPlatformFirmwareBlob2:
      return blob2(d);
    case ev::kEfiAction:
    case ev::kEfiHcrtmEvent:
      return c_text(d);
    case ev::kIpl:
      return json{{"String", unescaped_string(d)}};
    case ev::kEfiBootServicesApplication:
    case ev::kEfiBootServicesDriver:
    case ev::kEfiRuntimeServicesDriver:
      return decode_image_load(d);
    case ev::kEfiGptEvent:
      return decode_gpt(d);
    case ev::kNoAction:
      if (d.size() > 16 && std::memcmp(d.data(), "StartupLocality\0", 16) == 0)
        return json{{"StartupLocality", d[16]}};
      return hex_encode(d);
    default:
      return hex_encode(d);
  }
}

json event_to_json(const LogEvent& e) {
  json o;
  o["EventNum"] = e.number;
  o["PCRIndex"] = e.pcr;
  o["EventType"] = event_type_name(e.type);
  if (e.number == 0) {
    // The SHA-1 format header record; its data is the Spec ID event.
    o["Digest"] = e.digests.empty() ? std::string() : hex_encode(e.digests[0].digest);
    o["EventSize"] = e.data.size();
    return o;
  }
  o["DigestCount"] = e.digests.size();
  json digests = json::array();
  for (const auto& d : e.digests) digests.push_back({{"AlgorithmId", alg_name(d.algorithm_id)}, {"Digest", hex_encode(d.digest)}});
  o["Digests"] = std::move(digests);
  o["EventSize"] = e.data.size();
  if (!e.data.empty()) o["Event"] = decode_event_data(e);
  return o;
}

json to_parsed_json(const EventLog& log, const PcrBanks& pcrs) {
  json events = json::array();
  for (const auto& e : log.events) events.push_back(event_to_json(e));
  if (!log.events.empty()) {
    const auto& s = log.spec_id;
    json algs = json::array();
    for (std::size_t i = 0; i < s.algorithms.size(); ++i)
      algs.push_back({{"Algorithm[" + std::to_string(i) + "]", nullptr},
                      {"algorithmId", alg_name(s.algorithms[i].algorithm_id)},
                      {"digestSize", s.algorithms[i].digest_size}});
    json spec{{"Signature", "Spec ID Event03"},
              {"platformClass", s.platform_class},
              {"specVersionMinor", s.spec_version_minor},
              {"specVersionMajor", s.spec_version_major},
              {"specErrata", s.spec_errata},
              {"uintnSize", s.uintn_size},
              {"numberOfAlgorithms", s.algorithms.size()},
              {"Algorithms", std::move(algs)},
              {"vendorInfoSize", s.vendor_info.size()}};
    if (!s.vendor_info.empty()) spec["vendorInfo"] = hex_encode(s.vendor_info);
    events[0]["SpecID"] = json::array({std::move(spec)});
  }
  json pcr_json = json::object(), aggregates = json::object();
  for (const auto& [alg, bank] : pcrs) {
    json b = json::object();
    for (const auto& [n, v] : bank) b[std::to_string(n)] = hex_encode(v);
    pcr_json[std::string(crypto::hash_name(alg))] = std::move(b);
    aggregates[std::string(crypto::hash_name(alg))] = boot_aggregates(alg, bank);
  }
  return json{{"version", 2}, {"events", std::move(events)}, {"pcrs", std::move(pcr_json)},
              {"boot_aggregates", std::move(aggregates)}};
}

}  // namespace kl::mb
