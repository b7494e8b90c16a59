// Helpers for the keylime-policy tests: run the built binary, read samples and outputs.
#pragma once
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace kl::tools_test {

inline std::string tool_path() { return std::string(KL_BINARY_DIR) + "/keylime-policy"; }

// keylime-policy <args...>; stdout and stderr together.
inline kl::testing::CommandResult run_tool(std::vector<std::string> args) {
  args.insert(args.begin(), tool_path());
  return kl::testing::run_command(args);
}

inline std::string sample(const std::string& rel) { return std::string(KL_TESTDATA_DIR) + "/keylime/" + rel; }

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << text;
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

}  // namespace kl::tools_test
