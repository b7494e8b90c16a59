#include "verifier/request_checks.hpp"

#include <set>
#include <vector>

#include "common/attest/parse_error.hpp"

namespace kl::verifier {

namespace {
struct DuplicateKey {
  std::string key;
};
}  // namespace

nlohmann::json parse_json_strict(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key) {
      if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second)
        throw DuplicateKey{parsed.get<std::string>()};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback, true);
  } catch (const DuplicateKey& d) {
    throw ParseError("duplicate JSON key '" + d.key + "'");
  } catch (const nlohmann::json::exception& e) {
    throw ParseError(std::string("malformed JSON: ") + e.what());
  }
}

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 80) return false;
  for (char c : id) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && c != '.' && c != '-') return false;
  }
  return id != "." && id.find("..") == std::string_view::npos;
}

std::string printable_for_log(std::string_view text, std::size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace kl::verifier
