#include "common/attest/tpm/kdf.hpp"

#include <stdexcept>

namespace kl::tpm {
namespace {

void put_be32(Bytes& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// The TPM's labels are NUL-terminated strings; callers pass the text, and a label that already carries
// its NUL (as some callers spell "IDENTITY\0") is not given a second one.
void put_label(Bytes& out, std::string_view label) {
  out.insert(out.end(), label.begin(), label.end());
  if (label.empty() || label.back() != '\0') out.push_back(0);
}

// Both KDFs return ceil(bits/8) bytes; when bits is not a byte multiple the TPM clears the unused
// high-order bits of the first byte.
void trim(Bytes& out, std::uint32_t bits) {
  out.resize((static_cast<std::size_t>(bits) + 7) / 8);
  if (bits % 8 != 0 && !out.empty()) out[0] &= static_cast<std::uint8_t>(0xFF >> (8 - bits % 8));
}

// The output length is bounded so a caller cannot ask for an unbounded loop by accident.
constexpr std::uint32_t kMaxBits = 1u << 20;

}  // namespace

Bytes kdfa(crypto::HashAlg alg, ByteView key, std::string_view label, ByteView context_u, ByteView context_v,
           std::uint32_t bits) {
  if (bits == 0 || bits > kMaxBits) throw std::invalid_argument("kdfa: bit count out of range");
  const std::size_t want = (static_cast<std::size_t>(bits) + 7) / 8;
  Bytes tail;  // label || 0 || U || V || BE32(bits), the part that is the same in every block
  put_label(tail, label);
  tail.insert(tail.end(), context_u.begin(), context_u.end());
  tail.insert(tail.end(), context_v.begin(), context_v.end());
  put_be32(tail, bits);

  Bytes out;
  out.reserve(want + crypto::digest_size(alg));
  for (std::uint32_t counter = 1; out.size() < want; ++counter) {
    Bytes block;
    put_be32(block, counter);
    block.insert(block.end(), tail.begin(), tail.end());
    Bytes mac = crypto::hmac(alg, key, block);
    out.insert(out.end(), mac.begin(), mac.end());
  }
  trim(out, bits);
  return out;
}

Bytes kdfe(crypto::HashAlg alg, ByteView z, std::string_view label, ByteView party_u, ByteView party_v,
           std::uint32_t bits) {
  if (bits == 0 || bits > kMaxBits) throw std::invalid_argument("kdfe: bit count out of range");
  const std::size_t want = (static_cast<std::size_t>(bits) + 7) / 8;
  Bytes tail;  // Z || label || 0 || partyU || partyV
  tail.insert(tail.end(), z.begin(), z.end());
  put_label(tail, label);
  tail.insert(tail.end(), party_u.begin(), party_u.end());
  tail.insert(tail.end(), party_v.begin(), party_v.end());

  Bytes out;
  out.reserve(want + crypto::digest_size(alg));
  for (std::uint32_t counter = 1; out.size() < want; ++counter) {
    Bytes block;
    put_be32(block, counter);
    block.insert(block.end(), tail.begin(), tail.end());
    Bytes h = crypto::digest(alg, block);
    out.insert(out.end(), h.begin(), h.end());
  }
  trim(out, bits);
  return out;
}

}  // namespace kl::tpm
