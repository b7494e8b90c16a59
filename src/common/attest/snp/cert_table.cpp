#include "common/attest/snp/cert_table.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "common/attest/parse_error.hpp"

namespace kl::snp {

namespace {

using Guid = std::array<std::uint8_t, 16>;

// GUIDs are stored in their little-endian (mixed-endian) binary form, as the firmware interface writes them.
Guid guid(std::uint32_t a, std::uint16_t b, std::uint16_t c, std::array<std::uint8_t, 8> d) {
  Guid g{};
  for (int i = 0; i < 4; ++i) g[i] = static_cast<std::uint8_t>(a >> (8 * i));
  for (int i = 0; i < 2; ++i) g[4 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  for (int i = 0; i < 2; ++i) g[6 + i] = static_cast<std::uint8_t>(c >> (8 * i));
  std::copy(d.begin(), d.end(), g.begin() + 8);
  return g;
}

const Guid kVcek = guid(0x63da758d, 0xe664, 0x4564, {0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd});
const Guid kVlek = guid(0xa8074bc2, 0xa25a, 0x483e, {0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1});
const Guid kAsk = guid(0x4ab7b379, 0xbbac, 0x4fe4, {0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82});
const Guid kArk = guid(0xc0b406a4, 0xa803, 0x4952, {0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae});

std::uint32_t u32(ByteView b, std::size_t off) {
  return std::uint32_t{b[off]} | std::uint32_t{b[off + 1]} << 8 | std::uint32_t{b[off + 2]} << 16 |
         std::uint32_t{b[off + 3]} << 24;
}
void put32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

CertTable parse_cert_table(ByteView t) {
  CertTable out;
  std::set<Guid> seen;
  constexpr std::size_t kEntry = 24;
  for (std::size_t pos = 0;; pos += kEntry) {
    if (pos + kEntry > t.size()) throw ParseError("SNP certificate table has no terminating entry");
    Guid g;
    std::copy(t.begin() + pos, t.begin() + pos + 16, g.begin());
    std::uint32_t off = u32(t, pos + 16), len = u32(t, pos + 20);
    bool zero_guid = std::all_of(g.begin(), g.end(), [](std::uint8_t c) { return c == 0; });
    if (zero_guid && off == 0 && len == 0) break;
    if (off > t.size() || len > t.size() - off || len == 0)
      throw ParseError("SNP certificate table entry " + std::to_string(pos / kEntry) + " is out of bounds");
    if (!seen.insert(g).second) throw ParseError("SNP certificate table has a duplicate GUID");
    Bytes data(t.begin() + off, t.begin() + off + len);
    if (g == kVcek) out.vcek = std::move(data);
    else if (g == kVlek) out.vlek = std::move(data);
    else if (g == kAsk) out.ask = std::move(data);
    else if (g == kArk) out.ark = std::move(data);
    else out.other_guids.push_back(hex_encode(g));
  }
  return out;
}

Bytes build_cert_table(const CertTable& t) {
  std::vector<std::pair<Guid, const Bytes*>> items;
  if (t.vcek) items.emplace_back(kVcek, &*t.vcek);
  if (t.vlek) items.emplace_back(kVlek, &*t.vlek);
  if (t.ask) items.emplace_back(kAsk, &*t.ask);
  if (t.ark) items.emplace_back(kArk, &*t.ark);
  std::size_t off = (items.size() + 1) * 24;
  Bytes out;
  for (auto& [g, data] : items) {
    out.insert(out.end(), g.begin(), g.end());
    put32(out, static_cast<std::uint32_t>(off));
    put32(out, static_cast<std::uint32_t>(data->size()));
    off += data->size();
  }
  out.insert(out.end(), 24, 0);
  for (auto& [g, data] : items) out.insert(out.end(), data->begin(), data->end());
  return out;
}

}  // namespace kl::snp
