// The TCG PC Client crypto-agile binary event log (verification.md §5.1): a SHA-1 format first record
// carrying the "Spec ID Event03" header, then TCG_PCR_EVENT2 records with one digest per bank.
// parse_event_log() is the only place that touches the raw bytes; it checks every length against the
// bytes that are actually left and throws kl::ParseError for anything malformed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::mb {

// Event types of the PC Client Platform Firmware Profile (names as tpm2_eventlog prints them).
namespace ev {
inline constexpr std::uint32_t kPrebootCert = 0x0, kPostCode = 0x1, kNoAction = 0x3, kSeparator = 0x4,
                               kAction = 0x5, kEventTag = 0x6, kSCrtmContents = 0x7, kSCrtmVersion = 0x8,
                               kCpuMicrocode = 0x9, kPlatformConfigFlags = 0xA, kTableOfDevices = 0xB,
                               kCompactHash = 0xC, kIpl = 0xD, kIplPartitionData = 0xE, kNonhostCode = 0xF,
                               kNonhostConfig = 0x10, kNonhostInfo = 0x11, kOmitBootDeviceEvents = 0x12;
inline constexpr std::uint32_t kEfiVariableDriverConfig = 0x80000001, kEfiVariableBoot = 0x80000002,
                               kEfiBootServicesApplication = 0x80000003, kEfiBootServicesDriver = 0x80000004,
                               kEfiRuntimeServicesDriver = 0x80000005, kEfiGptEvent = 0x80000006,
                               kEfiAction = 0x80000007, kEfiPlatformFirmwareBlob = 0x80000008,
                               kEfiHandoffTables = 0x80000009, kEfiPlatformFirmwareBlob2 = 0x8000000A,
                               kEfiHandoffTables2 = 0x8000000B, kEfiVariableBoot2 = 0x8000000C,
                               kEfiHcrtmEvent = 0x80000010, kEfiVariableAuthority = 0x800000E0;
}  // namespace ev

// "EV_S_CRTM_VERSION" etc.; unknown types as tpm2_eventlog prints them ("0x..." hex).
std::string event_type_name(std::uint32_t type);

struct SpecIdAlgorithm {
  std::uint16_t algorithm_id = 0;  // TPM_ALG_ID
  std::uint16_t digest_size = 0;
};

struct SpecIdEvent {
  std::uint32_t platform_class = 0;
  std::uint8_t spec_version_minor = 0, spec_version_major = 0, spec_errata = 0, uintn_size = 0;
  std::vector<SpecIdAlgorithm> algorithms;
  Bytes vendor_info;
};

struct EventDigest {
  std::uint16_t algorithm_id = 0;            // TPM_ALG_ID as logged
  std::optional<crypto::HashAlg> alg;        // nullopt for a bank we have no name for
  Bytes digest;
};

struct LogEvent {
  std::size_t number = 0;                    // EventNum: 0 is the Spec ID header record
  std::size_t offset = 0;                    // byte offset of the record in the log (for error texts)
  std::uint32_t pcr = 0;
  std::uint32_t type = 0;
  std::vector<EventDigest> digests;          // header record: one SHA-1 digest
  Bytes data;                                // the event data, EventSize bytes
};

struct EventLog {
  SpecIdEvent spec_id;
  std::vector<LogEvent> events;              // events[0] is the header record
};

// Limits that keep a hostile log from costing unbounded memory or time. A record whose EventSize is larger
// than the bytes left is malformed regardless of these.
struct ParseLimits {
  std::size_t max_log_bytes = 16u * 1024u * 1024u;
  std::size_t max_events = 100000;
  std::size_t max_algorithms = 16;
};

// Throws kl::ParseError: empty log, first record not EV_NO_ACTION with a "Spec ID Event03" header, a digest
// size that does not match its algorithm, an algorithm in a record that the header did not declare (or twice),
// more digests than declared algorithms, a PCR index above 31, any length field that points past the end, trailing bytes in the
// header event.
EventLog parse_event_log(ByteView log, const ParseLimits& limits = {});

// StartupLocality EV_NO_ACTION ("StartupLocality\0" + u8 locality), if the log has one: tpm2-tools starts
// PCR 0 from that locality (0..0 || locality) instead of zeros.
std::optional<std::uint8_t> startup_locality(const EventLog& log);

}  // namespace kl::mb
