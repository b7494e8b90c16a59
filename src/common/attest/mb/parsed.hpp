// The parsed representation of a boot event log that measured-boot policies consume (verification.md §5.2):
// the JSON Keylime gets from tpm2_eventlog (tpm2-tools >= 5.2) after its libefivar enrichment and string
// unescaping. Shape per event: {"EventNum","PCRIndex","EventType","DigestCount","Digests":[{"AlgorithmId",
// "Digest"}],"EventSize","Event"}; the header record has "Digest" and "SpecID" instead.
//
// Deliberate differences from the Python pipeline (see docs/compatibility): "pcrs" values are lowercase hex
// strings (Python holds them as big ints, which JSON cannot carry); device paths are rendered by our own
// renderer for the node types listed in device_path.hpp and as hex otherwise.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/mb/event_log.hpp"
#include "common/attest/mb/replay.hpp"

namespace kl::mb {

// The "Event" value of one record, decoded per type: EFI variables (SecureBoot -> {"Enabled"}, PK/KEK/db/dbx
// -> signature lists, BootOrder -> ["Boot%04x"...], Boot#### -> {"Enabled","FilePathListLength",
// "Description","DevicePath"}, authority variables -> [{"SignatureOwner","SignatureData"}], SbatLevel ->
// {"String"}), boot services images (with "DevicePath"), GPT (header + partitions), firmware blobs
// ({"BlobBase","BlobLength"} as integers), EV_IPL -> {"String"}, EV_EFI_ACTION / EV_POST_CODE ->
// text, EV_SEPARATOR and unknown data -> lowercase hex, StartupLocality -> {"StartupLocality"}.
// Never throws for odd event data: what does not decode is given as hex, as tpm2_eventlog does.
nlohmann::json decode_event_data(const LogEvent& event);

// One record as a JSON object (header record included).
nlohmann::json event_to_json(const LogEvent& event);

// {"version": 2, "events": [...], "pcrs": {"sha256": {"0": "<hex>", ...}, ...},
//  "boot_aggregates": {"sha256": ["<hex>", "<hex>"], ...}}
nlohmann::json to_parsed_json(const EventLog& log, const PcrBanks& pcrs);

// EFI GUID from its 16-byte mixed-endian encoding, lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
// Requires bytes.size() >= 16.
std::string guid_to_string(ByteView bytes);

}  // namespace kl::mb
