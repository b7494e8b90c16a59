// The PCR blob an agent sends with a quote (verification.md §1.4): tpm2-tools' in-memory dump of
// TPML_PCR_SELECTION followed by TPML_DIGEST blocks, little-endian with C padding:
//   u32 count | 16 x {u16 hash, u8 sizeofSelect, u8 select[4], u8 pad} | u32 n | n x TPML_DIGEST
//   TPML_DIGEST = u32 count | 8 x {u16 size, u8 buffer[64]}   (532 bytes)
// Any number n of digest blocks is accepted (tpm2-tools writes one per 8 PCRs).
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "common/attest/crypto/bytes.hpp"

namespace kl::quote {

using PcrValues = std::map<std::uint32_t, Bytes>;  // PCR number -> value

struct PcrBlob {
  std::uint32_t selection_count = 0;                // TPML_PCR_SELECTION.count as sent
  std::map<std::uint16_t, std::uint32_t> selection;  // hashAlg -> bitmap (bit i = PCR i, 0..23), all 16 slots
  std::vector<Bytes> values;                         // every non-empty digest slot, in order
};

// sizeofSelect must be 0 or 3; a digest slot size must be <= 64; n <= 64 blocks; the whole blob must be
// consumed exactly. Throws kl::ParseError.
PcrBlob parse_pcr_blob(ByteView blob);

struct PcrBank {
  Bytes digest;     // H(concatenation of the selected PCR values), to compare with TPMS_ATTEST.pcrDigest
  PcrValues pcrs;
};

// Keylime's recomputation: uses the selection for `tpm_hash_alg` (the signature's hash), repeated
// selection_count times, PCRs 0..23 ascending; every value must be consumed exactly.
// Throws kl::ParseError when the blob does not fit the selection (no selection for the bank, too few or
// too many values) or the hash is not SHA-1/256/384/512.
PcrBank hash_pcr_bank(const PcrBlob& blob, std::uint16_t tpm_hash_alg);

// Build a blob for one bank (software agents, tests): values in ascending PCR order.
Bytes make_pcr_blob(std::uint16_t tpm_hash_alg, const PcrValues& pcrs);

}  // namespace kl::quote
