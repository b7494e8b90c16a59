#include "common/attest/quote/pcr_blob.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::quote {
namespace {

constexpr std::size_t kSelectionSlots = 16;      // TPM2_NUM_PCR_BANKS in tpm2-tss
constexpr std::size_t kSelectionBytes = 4 + kSelectionSlots * 8;  // 132
constexpr std::size_t kDigestSlots = 8;
constexpr std::size_t kDigestSlotBuffer = 64;    // sizeof(TPMU_HA)
constexpr std::size_t kDigestBlockBytes = 4 + kDigestSlots * (2 + kDigestSlotBuffer);  // 532
constexpr std::uint32_t kMaxDigestBlocks = 64;   // 24 PCRs x 16 banks / 8 per block = 48, with margin
constexpr std::uint32_t kPcrCount = 24;

std::string hex_id(std::uint16_t id) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%#x", id);
  return buf;
}

std::uint32_t le32(ByteView b, std::size_t off) {
  return std::uint32_t{b[off]} | (std::uint32_t{b[off + 1]} << 8) | (std::uint32_t{b[off + 2]} << 16) |
         (std::uint32_t{b[off + 3]} << 24);
}
std::uint16_t le16(ByteView b, std::size_t off) {
  return static_cast<std::uint16_t>(b[off] | (b[off + 1] << 8));
}
void put_le32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_le16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}

}  // namespace

PcrBlob parse_pcr_blob(ByteView blob) {
  if (blob.size() < kSelectionBytes + 4) throw ParseError("PCR blob too short (" + std::to_string(blob.size()) + " bytes)");
  PcrBlob out;
  out.selection_count = le32(blob, 0);
  for (std::size_t i = 0; i < kSelectionSlots; ++i) {
    const std::size_t off = 4 + i * 8;
    const std::uint16_t hash = le16(blob, off);
    const std::uint8_t size = blob[off + 2];
    if (size != 0 && size != 3)
      throw ParseError("size_of_select must be either 0 or 3 but it is " + std::to_string(size));
    const std::uint32_t select =
        size == 3 ? (std::uint32_t{blob[off + 3]} | (std::uint32_t{blob[off + 4]} << 8) |
                     (std::uint32_t{blob[off + 5]} << 16))
                  : 0;
    out.selection[hash] = select;  // a later slot for the same hash wins, as in Keylime's dict
  }
  const std::uint32_t blocks = le32(blob, kSelectionBytes);
  if (blocks > kMaxDigestBlocks) throw ParseError("PCR blob: too many TPML_DIGEST blocks");
  // Checked before reading so that a lying block count cannot walk past the end.
  if (blob.size() != kSelectionBytes + 4 + std::size_t{blocks} * kDigestBlockBytes)
    throw ParseError("Failed to parse the entire pcrblob");
  std::size_t off = kSelectionBytes + 4;
  for (std::uint32_t b = 0; b < blocks; ++b) {
    off += 4;  // TPML_DIGEST.count is ignored: empty slots are recognised by size 0
    for (std::size_t s = 0; s < kDigestSlots; ++s) {
      const std::uint16_t size = le16(blob, off);
      off += 2;
      if (size > kDigestSlotBuffer) throw ParseError("PCR blob: digest size " + std::to_string(size) + " exceeds 64");
      if (size) out.values.emplace_back(blob.begin() + static_cast<std::ptrdiff_t>(off),
                                        blob.begin() + static_cast<std::ptrdiff_t>(off + size));
      off += kDigestSlotBuffer;
    }
  }
  return out;
}

PcrBank hash_pcr_bank(const PcrBlob& blob, std::uint16_t tpm_hash_alg) {
  auto hash = crypto::hash_from_tpm_alg(tpm_hash_alg);
  if (!hash || *hash == crypto::HashAlg::sm3_256)
    throw ParseError("Unsupported hash with id " + hex_id(tpm_hash_alg) + " in signature blob");
  auto sel = blob.selection.find(tpm_hash_alg);
  if (sel == blob.selection.end())
    throw ParseError("PCR blob has no selection for the quote's hash algorithm " + hex_id(tpm_hash_alg));

  PcrBank bank;
  Bytes concatenated;
  std::size_t idx = 0;
  // Every round consumes at least one value when the selection is non-empty, so a huge count is bounded
  // by the number of values; an empty selection needs no rounds at all.
  const std::uint32_t rounds = sel->second ? blob.selection_count : 0;
  for (std::uint32_t round = 0; round < rounds; ++round) {
    for (std::uint32_t pcr = 0; pcr < kPcrCount; ++pcr) {
      if (!(sel->second & (1u << pcr))) continue;
      if (idx >= blob.values.size())
        throw ParseError("pcr_values list is too short to get item " + std::to_string(idx));
      const Bytes& v = blob.values[idx++];
      concatenated.insert(concatenated.end(), v.begin(), v.end());
      bank.pcrs[pcr] = v;
    }
  }
  if (idx != blob.values.size()) throw ParseError("Did not consume all entries in pcr_values list");
  bank.digest = crypto::digest(*hash, concatenated);
  return bank;
}

Bytes make_pcr_blob(std::uint16_t tpm_hash_alg, const PcrValues& pcrs) {
  Bytes b;
  put_le32(b, 1);
  std::uint32_t select = 0;
  for (const auto& [pcr, v] : pcrs)
    if (pcr < kPcrCount) select |= 1u << pcr;
  for (std::size_t i = 0; i < kSelectionSlots; ++i) {
    if (i == 0) {
      put_le16(b, tpm_hash_alg);
      b.push_back(3);
      b.push_back(static_cast<std::uint8_t>(select));
      b.push_back(static_cast<std::uint8_t>(select >> 8));
      b.push_back(static_cast<std::uint8_t>(select >> 16));
      b.push_back(0);
      b.push_back(0);
    } else {
      b.insert(b.end(), 8, 0);
    }
  }
  std::vector<const Bytes*> values;
  for (const auto& [pcr, v] : pcrs)
    if (pcr < kPcrCount) values.push_back(&v);
  const std::uint32_t blocks = static_cast<std::uint32_t>((values.size() + kDigestSlots - 1) / kDigestSlots);
  put_le32(b, blocks);
  for (std::uint32_t blk = 0; blk < blocks; ++blk) {
    const std::size_t first = blk * kDigestSlots;
    const std::size_t n = std::min(kDigestSlots, values.size() - first);
    put_le32(b, static_cast<std::uint32_t>(n));
    for (std::size_t s = 0; s < kDigestSlots; ++s) {
      if (s < n) {
        const Bytes& v = *values[first + s];
        const std::size_t len = std::min(v.size(), kDigestSlotBuffer);
        put_le16(b, static_cast<std::uint16_t>(len));
        b.insert(b.end(), v.begin(), v.begin() + static_cast<std::ptrdiff_t>(len));
        b.insert(b.end(), kDigestSlotBuffer - len, 0);
      } else {
        put_le16(b, 0);
        b.insert(b.end(), kDigestSlotBuffer, 0);
      }
    }
  }
  return b;
}

}  // namespace kl::quote
