// Builds small crypto-agile event logs (SHA-256 bank only) for synthetic cases the samples lack.
#pragma once
#include <cstdint>
#include <string>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::mb::testing {

class LogBuilder {
 public:
  LogBuilder() {
    put32(0);
    put32(0x3);  // EV_NO_ACTION
    out_.insert(out_.end(), 20, 0);
    Bytes spec;
    const char sig[16] = "Spec ID Event03";
    spec.insert(spec.end(), sig, sig + 16);
    for (int i = 0; i < 4; ++i) spec.push_back(0);  // platformClass
    spec.push_back(0);                             // minor
    spec.push_back(2);                             // major
    spec.push_back(0);                             // errata
    spec.push_back(2);                             // uintnSize
    spec.push_back(1), spec.push_back(0), spec.push_back(0), spec.push_back(0);  // 1 algorithm
    spec.push_back(0x0B), spec.push_back(0);                                       // sha256
    spec.push_back(32), spec.push_back(0);
    spec.push_back(0);  // vendorInfoSize
    put32(static_cast<std::uint32_t>(spec.size()));
    out_.insert(out_.end(), spec.begin(), spec.end());
  }

  // Digest defaults to SHA-256 of the data.
  LogBuilder& add(std::uint32_t pcr, std::uint32_t type, ByteView data, const Bytes* digest = nullptr) {
    put32(pcr);
    put32(type);
    put32(1);
    out_.push_back(0x0B), out_.push_back(0);
    Bytes d = digest ? *digest : crypto::digest(crypto::HashAlg::sha256, data);
    out_.insert(out_.end(), d.begin(), d.end());
    put32(static_cast<std::uint32_t>(data.size()));
    out_.insert(out_.end(), data.begin(), data.end());
    return *this;
  }
  LogBuilder& add_text(std::uint32_t pcr, std::uint32_t type, const std::string& text) {
    return add(pcr, type, as_bytes(text));
  }
  const Bytes& bytes() const { return out_; }

 private:
  void put32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  Bytes out_;
};

// UEFI_VARIABLE_DATA: GUID, u64 name length, u64 data length, UCS-2 name, data.
inline Bytes efi_variable(ByteView guid16, const std::string& name, ByteView data) {
  Bytes b(guid16.begin(), guid16.end());
  auto put64 = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  put64(name.size());
  put64(data.size());
  for (char c : name) b.push_back(static_cast<std::uint8_t>(c)), b.push_back(0);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c in its mixed-endian encoding.
inline Bytes efi_global_guid() {
  return *hex_decode("61dfe48bca93d211aa0d00e098032b8c");
}

}  // namespace kl::mb::testing
