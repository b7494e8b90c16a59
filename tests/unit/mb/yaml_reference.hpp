// Reads the facts the tests compare against out of the tpm2_eventlog YAML samples (testdata/keylime/mb/
// *.tpm2_eventlog-5.4.yaml) with a line scanner: per event its number, PCR, type, digests and a few
// decoded fields, plus the replayed "pcrs". Not a YAML parser; it relies on tpm2_eventlog's fixed layout.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace kl::mb::testing {

struct YamlEvent {
  std::size_t num = 0;
  std::uint32_t pcr = 0;
  std::string type;
  std::vector<std::pair<std::string, std::string>> digests;  // alg, hex
  std::size_t event_size = 0;
  std::map<std::string, std::string> fields;                 // "UnicodeName", "String", "Enabled", ...
};

struct YamlLog {
  std::vector<YamlEvent> events;
  std::map<std::string, std::map<std::uint32_t, std::string>> pcrs;  // bank -> pcr -> hex (no 0x)
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline YamlLog read_yaml_reference(const std::string& path) {
  YamlLog log;
  std::istringstream in(read_text(path));
  std::string line, bank, pending_alg, block_field;
  bool in_pcrs = false;
  static const std::regex kPcr(R"(^    (\d+)\s*: 0x([0-9a-f]+)$)");
  static const std::regex kKey(R"(^\s*-?\s*([A-Za-z]+): ?(.*)$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (line == "pcrs:") {
      in_pcrs = true;
      continue;
    }
    if (in_pcrs) {
      if (line.size() > 2 && line[2] != ' ' && line.back() == ':') bank = line.substr(2, line.size() - 3);
      else if (std::regex_match(line, m, kPcr)) log.pcrs[bank][static_cast<std::uint32_t>(std::stoul(m[1]))] = m[2];
      continue;
    }
    if (!block_field.empty()) {  // first line of a "|-" block
      auto s = line.find_first_not_of(' ');
      log.events.back().fields[block_field] = s == std::string::npos ? "" : line.substr(s);
      block_field.clear();
      continue;
    }
    if (line.rfind("- EventNum: ", 0) == 0) {
      log.events.push_back({});
      log.events.back().num = std::stoul(line.substr(12));
      continue;
    }
    if (log.events.empty() || !std::regex_match(line, m, kKey)) continue;
    std::string key = m[1], val = m[2];
    auto& e = log.events.back();
    if (key == "PCRIndex") e.pcr = static_cast<std::uint32_t>(std::stoul(val));
    else if (key == "EventType") e.type = val;
    else if (key == "EventSize") e.event_size = std::stoul(val);
    else if (key == "AlgorithmId") pending_alg = val;
    else if (key == "Digest" && !pending_alg.empty() && line.rfind("    Digest: ", 0) == 0) {
      e.digests.push_back({pending_alg, val.substr(1, val.size() - 2)});
      pending_alg.clear();
    } else if (val == "|-") block_field = key;
    else if (!e.fields.count(key)) e.fields[key] = val;
  }
  return log;
}

}  // namespace kl::mb::testing
