// The measured-boot samples of testdata/keylime/mb and helpers shared by the mb tests.
#pragma once
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "unit/mb/yaml_reference.hpp"

namespace kl::mb::testing {

inline std::string mb_dir() { return std::string(KL_TESTDATA_DIR) + "/keylime/mb/"; }

inline Bytes read_bytes(const std::string& path) {
  std::string s = read_text(path);
  return Bytes(s.begin(), s.end());
}

struct Sample {
  std::string name;       // file in testdata/keylime/mb
  std::string yaml;       // tpm2_eventlog reference output
  bool secure_boot;
};

// The three valid binary logs (mb_log.b64 decoded).
inline std::vector<Sample> valid_samples() {
  return {{"binary_bios_measurements-secureboot", "binary_bios_measurements-secureboot.tpm2_eventlog-5.4.yaml", true},
          {"binary_bios_measurements", "binary_bios_measurements.tpm2_eventlog-5.4.yaml", false},
          {"mb_log.b64", "mb_log.tpm2_eventlog-5.4.yaml", true}};
}

inline std::string mb_log_b64_single_line() {
  std::string s = read_text(mb_dir() + "mb_log.b64"), out;
  for (char c : s)
    if (c != '\n' && c != '\r') out += c;
  return out;
}

inline Bytes sample_bytes(const Sample& s) {
  if (s.name == "mb_log.b64") return *base64_decode(mb_log_b64_single_line());
  return read_bytes(mb_dir() + s.name);
}

}  // namespace kl::mb::testing
