// Byte-to-text helpers shared by the event decoders (internal to mb/).
#pragma once
#include <cstdint>
#include <string>

#include "common/attest/crypto/bytes.hpp"

namespace kl::mb::detail {

// Bytes as a JSON-safe string: kept as is when valid UTF-8, else each byte >= 0x80 taken as Latin-1.
std::string to_json_text(ByteView bytes);

// UCS-2/UTF-16LE code units (n units from `bytes`) to UTF-8; stops at the first NUL unit when stop_at_nul.
std::string utf16le_to_utf8(ByteView bytes, std::size_t units, bool stop_at_nul);

std::uint16_t le16(const std::uint8_t* p);
std::uint32_t le32(const std::uint8_t* p);
std::uint64_t le64(const std::uint8_t* p);

}  // namespace kl::mb::detail
