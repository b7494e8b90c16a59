// TCB_VERSION (8 bytes, little-endian u64 in the report). Its byte layout depends on the product (spec §3.1):
//   Milan/Genoa: byte0 BL, byte1 TEE, bytes2-5 reserved, byte6 SNP, byte7 UCODE
//   Turin:       byte0 FMC, byte1 BL, byte2 TEE, byte3 SNP, bytes4-6 reserved, byte7 UCODE
// Comparisons are component-wise, never on the u64.
#pragma once
#include <cstdint>
#include <string>

#include "common/attest/snp/product.hpp"

namespace kl::snp {

struct TcbParts {
  std::uint8_t bl = 0, tee = 0, snp = 0, ucode = 0;
  std::uint8_t fmc = 0;  // Turin only; always 0 for Milan/Genoa
  bool has_fmc = false;  // true when decoded with the Turin layout

  bool operator==(const TcbParts&) const = default;
};

TcbParts decode_tcb(std::uint64_t raw, Product product);
std::uint64_t encode_tcb(const TcbParts& parts, Product product);  // inverse (reserved bytes zero); tests/fakes

// Every component of `a` >= the matching component of `b` (fmc compared only when both have it).
bool tcb_at_least(const TcbParts& a, const TcbParts& b);

// "bl=3 tee=0 snp=8 ucode=115" (+ " fmc=1" for Turin), for reasons.
std::string tcb_text(const TcbParts&);
// Store/caches key of spec §5.1: "bl03-tee00-snp08-uc115" (+ "-fmc01").
std::string tcb_key(const TcbParts&);

}  // namespace kl::snp
