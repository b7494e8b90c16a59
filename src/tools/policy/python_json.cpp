#include "tools/policy/python_json.hpp"

namespace kl::tools {
namespace {

void dump(const nlohmann::ordered_json& v, std::string& out) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += nlohmann::ordered_json(it.key()).dump(-1, ' ', true);
        out += ": ";
        dump(it.value(), out);
      }
      out += '}';
      break;
    }
    case nlohmann::ordered_json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        dump(v[i], out);
      }
      out += ']';
      break;
    }
    default:
      // Scalars: nlohmann's compact form equals Python's for strings (ensure_ascii), ints, bools, null.
      out += v.dump(-1, ' ', true);
  }
}

}  // namespace

std::string python_dumps(const nlohmann::ordered_json& value) {
  std::string out;
  dump(value, out);
  return out;
}

}  // namespace kl::tools
