#include "common/attest/mb/python_repr.hpp"

#include <algorithm>
#include <cstdio>

#include "common/attest/mb/policy.hpp"

namespace kl::mb::detail {
namespace {

// tpm2_eventlog's field order for the objects of a parsed log; unknown keys follow alphabetically.
int field_rank(const std::string& k) {
  static const char* const kOrder[] = {
      "EventNum", "PCRIndex", "EventType", "DigestCount", "Digests", "AlgorithmId", "Digest", "EventSize",
      "SpecID", "Event", "VariableName", "UnicodeNameLength", "VariableDataLength", "UnicodeName",
      "VariableData", "SignatureType", "SignatureListSize", "SignatureHeaderSize", "SignatureSize", "Keys",
      "SignatureOwner", "SignatureData", "Enabled", "FilePathListLength", "Description",
      "ImageLocationInMemory", "ImageLengthInMemory", "ImageLinkTimeAddress", "LengthOfDevicePath",
      "DevicePath", "BlobBase", "BlobLength", "String", "Header", "NumberOfPartitions", "Partitions"};
  for (std::size_t i = 0; i < std::size(kOrder); ++i)
    if (k == kOrder[i]) return static_cast<int>(i);
  return 1000;
}

// Decodes one UTF-8 sequence; invalid bytes are returned as themselves.
std::uint32_t next_cp(std::string_view s, std::size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n <= 0 || i + static_cast<std::size_t>(n) >= s.size()) {
    ++i;
    return c;
  }
  std::uint32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3F);
  i += static_cast<std::size_t>(n) + 1;
  return cp;
}

template <class J>
std::string repr_scalar(const J& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.template get<bool>() ? "True" : "False";
  if (v.is_string()) return repr_str(v.template get_ref<const std::string&>());
  return v.dump();  // numbers
}

}  // namespace

std::string repr_str(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos, has_double = s.find('"') != std::string_view::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = next_cp(s, i);
    char buf[16];
    if (cp == static_cast<std::uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0x100)) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else if (cp >= 0x100 && cp < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else if (cp >= 0x10000) {
      std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    } else out += static_cast<char>(cp);
  }
  out += q;
  return out;
}

std::string repr_str_tuple(const std::vector<std::string>& items) {
  std::string out = "(";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + repr_str(items[i]);
  return out + (items.size() == 1 ? ",)" : ")");
}

std::string repr_str_set(const std::vector<std::string>& items) {
  if (items.empty()) return "set()";
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + repr_str(items[i]);
  return out + "}";
}

std::string repr(const nlohmann::ordered_json& v) {
  if (v.is_array()) {
    std::string out = "[";
    bool first = true;
    for (const auto& e : v) {
      out += (first ? "" : ", ") + repr(e);
      first = false;
    }
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, e] : v.items()) {
      out += (first ? "" : ", ") + repr_str(k) + ": " + repr(e);
      first = false;
    }
    return out + "}";
  }
  return repr_scalar(v);
}

std::string repr(const nlohmann::json& v) {
  if (v.is_array()) {
    std::string out = "[";
    bool first = true;
    for (const auto& e : v) {
      out += (first ? "" : ", ") + repr(e);
      first = false;
    }
    return out + "]";
  }
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (const auto& [k, e] : v.items()) keys.push_back(k);
    std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      return field_rank(a) < field_rank(b);
    });
    std::string out = "{";
    for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + repr_str(keys[i]) + ": " + repr(v.at(keys[i]));
    return out + "}";
  }
  return repr_scalar(v);
}

std::string python_type(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "<class 'NoneType'>";
    case nlohmann::json::value_t::boolean: return "<class 'bool'>";
    case nlohmann::json::value_t::string: return "<class 'str'>";
    case nlohmann::json::value_t::array: return "<class 'list'>";
    case nlohmann::json::value_t::object: return "<class 'dict'>";
    case nlohmann::json::value_t::number_float: return "<class 'float'>";
    default: return "<class 'int'>";
  }
}

}  // namespace kl::mb::detail

namespace kl::mb {
std::string python_repr(const nlohmann::json& value) { return detail::repr(value); }
}  // namespace kl::mb
