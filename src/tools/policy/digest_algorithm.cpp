#include "tools/policy/digest_algorithm.hpp"

#include <algorithm>

namespace kl::tools {

const std::vector<std::string>& hash_algorithm_names() {
  static const std::vector<std::string> names = {"sha1", "sha256", "sha384", "sha512", "sm3_256"};
  return names;
}

bool is_recognized_algorithm(std::string_view name) { return hex_size_of(name) != 0; }

std::size_t hex_size_of(std::string_view name) {
  if (name == "sha1") return 40;
  if (name == "sha256" || name == "sm3_256") return 64;
  if (name == "sha384") return 96;
  if (name == "sha512") return 128;
  return 0;
}

std::string algorithm_from_hex(std::string_view hex) {
  for (const auto& n : hash_algorithm_names())
    if (hex.size() == hex_size_of(n)) return n;
  return std::string(kInvalidAlgorithm);
}

std::string algorithm_from_digest_map(const kl::policy::DigestMap& map, bool ambiguous_sha256) {
  std::string algo(kInvalidAlgorithm);
  if (!map.empty() && !map.begin()->second.empty() && !map.begin()->second.front().empty())
    algo = algorithm_from_hex(map.begin()->second.front());
  if (ambiguous_sha256 && algo == "sha256") algo = std::string(kSha256OrSm3);
  return algo;
}

std::optional<std::string> choose_algorithm(const std::vector<AlgorithmSource>& sources, const ToolLog& log) {
  std::string algo;
  bool abort = false;
  for (const auto& [a, source] : sources) {
    if (a == kInvalidAlgorithm) {
      log.warning("Invalid digest algorithm found in the " + source);
      abort = true;
      continue;
    }
    if (a.empty()) continue;
    if (!algo.empty()) {
      if (a != algo) {
        if (algo == kSha256OrSm3 && (a == "sha256" || a == "sm3_256")) {
          algo = a;
          log.debug("Using digest algorithm '" + a + "' obtained from the " + source);
          continue;
        }
        log.warning("The digest algorithm in the " + source + " does not match the previously set '" + algo +
                    "' algorithm");
        abort = true;
      }
      continue;
    }
    if (!is_recognized_algorithm(a)) {
      if (a == kSha256OrSm3) {
        algo = a;
      } else {
        log.warning("Invalid digests algorithm " + a + " in the " + source);
        abort = true;
      }
      continue;
    }
    algo = a;
    if (abort) continue;
    log.debug("Using digest algorithm '" + a + "' obtained from the " + source);
  }
  if (abort) {
    log.warning("Aborting operation");
    return std::nullopt;
  }
  return algo;
}

}  // namespace kl::tools
