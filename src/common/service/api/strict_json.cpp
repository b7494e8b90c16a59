#include "common/service/api/strict_json.hpp"

#include <set>
#include <string>
#include <vector>

#include "common/attest/parse_error.hpp"

namespace kl::api {

namespace {
struct DuplicateKey {
  std::string key;
};
}  // namespace

nlohmann::json parse_json_strict(std::string_view text) {
  // One set of seen keys per open object; the parser callback sees keys in document order.
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start: open_objects.emplace_back(); break;
      case E::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case E::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second)
          throw DuplicateKey{parsed.get<std::string>()};
        break;
      default: break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const DuplicateKey& d) {
    throw ParseError("duplicate JSON key '" + d.key + "'");
  } catch (const nlohmann::json::exception& e) {
    throw ParseError(std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace kl::api
