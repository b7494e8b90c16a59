#include "common/attest/mb/event_log.hpp"

#include <cstring>
#include <map>

#include "common/attest/parse_error.hpp"

namespace kl::mb {
namespace {

// A cursor over the log that refuses to read past the end: every length from the log goes through need().
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return data_.size() - pos_; }
  bool done() const { return pos_ == data_.size(); }

  void need(std::size_t n, const char* what) const {
    if (n > left())
      throw ParseError("event log truncated at offset " + std::to_string(pos_) + ": " + what + " needs " +
                       std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
  }
  std::uint8_t u8(const char* what) {
    need(1, what);
    return data_[pos_++];
  }
  std::uint16_t u16(const char* what) {
    need(2, what);
    std::uint16_t v = static_cast<std::uint16_t>(data_[pos_] | (data_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32(const char* what) {
    need(4, what);
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<std::size_t>(i)];
    pos_ += 4;
    return v;
  }
  Bytes bytes(std::size_t n, const char* what) {
    need(n, what);
    Bytes out(data_.begin() + static_cast<std::ptrdiff_t>(pos_), data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return out;
  }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

constexpr char kSpecIdSignature[16] = {'S', 'p', 'e', 'c', ' ', 'I', 'D', ' ', 'E', 'v', 'e', 'n', 't', '0', '3', '\0'};

SpecIdEvent parse_spec_id(ByteView data, const ParseLimits& limits) {
  Reader r(data);
  Bytes sig = r.bytes(16, "Spec ID signature");
  if (std::memcmp(sig.data(), kSpecIdSignature, 16) != 0)
    throw ParseError("first event is not a \"Spec ID Event03\" header (not a crypto-agile log)");
  SpecIdEvent s;
  s.platform_class = r.u32("platformClass");
  s.spec_version_minor = r.u8("specVersionMinor");
  s.spec_version_major = r.u8("specVersionMajor");
  s.spec_errata = r.u8("specErrata");
  s.uintn_size = r.u8("uintnSize");
  std::uint32_t n = r.u32("numberOfAlgorithms");
  if (n == 0) throw ParseError("Spec ID header declares no hash algorithms");
  if (n > limits.max_algorithms)
    throw ParseError("Spec ID header declares " + std::to_string(n) + " hash algorithms, more than " +
                     std::to_string(limits.max_algorithms));
  r.need(static_cast<std::size_t>(n) * 4, "algorithm table");
  for (std::uint32_t i = 0; i < n; ++i) {
    SpecIdAlgorithm a;
    a.algorithm_id = r.u16("algorithmId");
    a.digest_size = r.u16("digestSize");
    if (a.digest_size == 0 || a.digest_size > 64)
      throw ParseError("Spec ID header: digest size " + std::to_string(a.digest_size) + " for algorithm 0x" +
                       hex_encode(Bytes{static_cast<std::uint8_t>(a.algorithm_id >> 8),
                                        static_cast<std::uint8_t>(a.algorithm_id)}) +
                       " is not plausible");
    if (auto alg = crypto::hash_from_tpm_alg(a.algorithm_id); alg && crypto::digest_size(*alg) != a.digest_size)
      throw ParseError("Spec ID header: digest size " + std::to_string(a.digest_size) + " does not match " +
                       std::string(crypto::hash_name(*alg)));
    for (const auto& prev : s.algorithms)
      if (prev.algorithm_id == a.algorithm_id) throw ParseError("Spec ID header lists an algorithm twice");
    s.algorithms.push_back(a);
  }
  std::uint8_t vendor_size = r.u8("vendorInfoSize");
  s.vendor_info = r.bytes(vendor_size, "vendorInfo");
  if (!r.done()) throw ParseError("Spec ID header has " + std::to_string(r.left()) + " trailing bytes");
  return s;
}

}  // namespace

std::string event_type_name(std::uint32_t type) {
  switch (type) {
    case ev::kPrebootCert: return "EV_PREBOOT_CERT";
    case ev::kPostCode: return "EV_POST_CODE";
    case 0x2: return "EV_UNUSED";
    case ev::kNoAction: return "EV_NO_ACTION";
    case ev::kSeparator: return "EV_SEPARATOR";
    case ev::kAction: return "EV_ACTION";
    case ev::kEventTag: return "EV_EVENT_TAG";
    case ev::kSCrtmContents: return "EV_S_CRTM_CONTENTS";
    case ev::kSCrtmVersion: return "EV_S_CRTM_VERSION";
    case ev::kCpuMicrocode: return "EV_CPU_MICROCODE";
    case ev::kPlatformConfigFlags: return "EV_PLATFORM_CONFIG_FLAGS";
    case ev::kTableOfDevices: return "EV_TABLE_OF_DEVICES";
    case ev::kCompactHash: return "EV_COMPACT_HASH";
    case ev::kIpl: return "EV_IPL";
    case ev::kIplPartitionData: return "EV_IPL_PARTITION_DATA";
    case ev::kNonhostCode: return "EV_NONHOST_CODE";
    case ev::kNonhostConfig: return "EV_NONHOST_CONFIG";
    case ev::kNonhostInfo: return "EV_NONHOST_INFO";
    case ev::kOmitBootDeviceEvents: return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case ev::kEfiVariableDriverConfig: return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case ev::kEfiVariableBoot: return "EV_EFI_VARIABLE_BOOT";
    case ev::kEfiBootServicesApplication: return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case ev::kEfiBootServicesDriver: return "EV_EFI_BOOT_SERVICES_DRIVER";
    case ev::kEfiRuntimeServicesDriver: return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case ev::kEfiGptEvent: return "EV_EFI_GPT_EVENT";
    case ev::kEfiAction: return "EV_EFI_ACTION";
    case ev::kEfiPlatformFirmwareBlob: return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case ev::kEfiHandoffTables: return "EV_EFI_HANDOFF_TABLES";
    case ev::kEfiPlatformFirmwareBlob2: return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case ev::kEfiHandoffTables2: return "EV_EFI_HANDOFF_TABLES2";
    case ev::kEfiVariableBoot2: return "EV_EFI_VARIABLE_BOOT2";
    case ev::kEfiHcrtmEvent: return "EV_EFI_HCRTM_EVENT";
    case ev::kEfiVariableAuthority: return "EV_EFI_VARIABLE_AUTHORITY";
    default: break;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", type);
  return buf;
}

EventLog parse_event_log(ByteView log, const ParseLimits& limits) {
  if (log.empty()) throw ParseError("event log is empty");
  if (log.size() > limits.max_log_bytes)
    throw ParseError("event log of " + std::to_string(log.size()) + " bytes exceeds the limit of " +
                     std::to_string(limits.max_log_bytes));
  Reader r(log);
  EventLog out;

  // Header record, SHA-1 log format (TCG_PCClientPCREvent).
  LogEvent head;
  head.number = 0;
  head.offset = 0;
  head.pcr = r.u32("PCRIndex");
  head.type = r.u32("EventType");
  if (head.type != ev::kNoAction)
    throw ParseError("first event has type " + event_type_name(head.type) + ", expected EV_NO_ACTION");
  head.digests.push_back(EventDigest{0x0004, crypto::HashAlg::sha1, r.bytes(20, "first event digest")});
  std::uint32_t head_size = r.u32("EventSize");
  head.data = r.bytes(head_size, "Spec ID event data");
  out.spec_id = parse_spec_id(head.data, limits);
  out.events.push_back(std::move(head));

  std::map<std::uint16_t, std::uint16_t> sizes;
  for (const auto& a : out.spec_id.algorithms) sizes[a.algorithm_id] = a.digest_size;

  while (!r.done()) {
    if (out.events.size() > limits.max_events)
      throw ParseError("event log has more than " + std::to_string(limits.max_events) + " events");
    LogEvent e;
    e.number = out.events.size();
    e.offset = r.pos();
    e.pcr = r.u32("PCRIndex");
    e.type = r.u32("EventType");
    if (e.pcr > 31)  // TPM2_MAX_PCRS: tpm2_eventlog refuses such a log as well
      throw ParseError("event " + std::to_string(e.number) + " at offset " + std::to_string(e.offset) +
                       " names PCR " + std::to_string(e.pcr));
    std::uint32_t count = r.u32("DigestCount");
    if (count > sizes.size())
      throw ParseError("event " + std::to_string(e.number) + " at offset " + std::to_string(e.offset) + " has " +
                       std::to_string(count) + " digests but the header declares " + std::to_string(sizes.size()) +
                       " algorithms");
    for (std::uint32_t i = 0; i < count; ++i) {
      EventDigest d;
      d.algorithm_id = r.u16("digest AlgorithmId");
      auto it = sizes.find(d.algorithm_id);
      if (it == sizes.end())
        throw ParseError("event " + std::to_string(e.number) + " at offset " + std::to_string(e.offset) +
                         " uses hash algorithm " + std::to_string(d.algorithm_id) + " not declared in the header");
      for (const auto& prev : e.digests)
        if (prev.algorithm_id == d.algorithm_id)
          throw ParseError("event " + std::to_string(e.number) + " has two digests of the same algorithm");
      d.alg = crypto::hash_from_tpm_alg(d.algorithm_id);
      d.digest = r.bytes(it->second, "digest");
      e.digests.push_back(std::move(d));
    }
    std::uint32_t size = r.u32("EventSize");
    e.data = r.bytes(size, "event data");
    out.events.push_back(std::move(e));
  }
  return out;
}

std::optional<std::uint8_t> startup_locality(const EventLog& log) {
  static constexpr char kSig[16] = {'S', 't', 'a', 'r', 't', 'u', 'p', 'L', 'o', 'c', 'a', 'l', 'i', 't', 'y', '\0'};
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    const auto& e = log.events[i];
    if (e.type == ev::kNoAction && e.pcr == 0 && e.data.size() == 17 && std::memcmp(e.data.data(), kSig, 16) == 0)
      return e.data[16];
  }
  return std::nullopt;
}

}  // namespace kl::mb
