// Helpers shared by the IMA unit tests: reading samples from the shared test data.
#pragma once
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/ima/measurement_list.hpp"

namespace kl::test_ima {

inline std::string data_path(const std::string& rel) { return std::string(KL_TESTDATA_DIR) + "/keylime/" + rel; }

inline std::string slurp(const std::string& rel) {
  std::ifstream f(data_path(rel), std::ios::binary);
  if (!f) throw std::runtime_error("missing test data: " + rel);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

inline nlohmann::json load_json(const std::string& rel) { return nlohmann::json::parse(slurp(rel)); }

// A well-formed ima-ng line (sha1 template hash) for `path` whose file digest is sha256(content).
inline std::string make_ima_ng_line(const std::string& path, const std::string& content, const std::string& pcr = "10") {
  kl::ima::Entry e;
  e.kind = kl::ima::Template::ima_ng;
  e.pcr = pcr;
  e.digest.algorithm = "sha256";
  e.digest.hash = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(content));
  e.name = path;
  auto th = kl::crypto::digest(kl::crypto::HashAlg::sha1, kl::ima::template_data(e));
  return pcr + " " + kl::hex_encode(th) + " ima-ng sha256:" + kl::hex_encode(e.digest.hash) + " " + path;
}

}  // namespace kl::test_ima
