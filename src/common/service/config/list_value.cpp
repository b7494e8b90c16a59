#include "common/service/config/list_value.hpp"

#include <cctype>
#include <stdexcept>

namespace kl::config {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Reads a Python string literal starting at text[i] (a quote); returns the unescaped value, leaves i
// after the closing quote.
std::string read_quoted(const std::string& text, size_t& i) {
  const char q = text[i++];
  std::string out;
  while (i < text.size()) {
    const char c = text[i++];
    if (c == q) return out;
    if (c == '\\' && i < text.size()) {
      const char n = text[i++];
      switch (n) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        default: out += n; break;  // \\ \' \" and unknown escapes keep the character
      }
      continue;
    }
    out += c;
  }
  throw std::invalid_argument("unterminated string in list");
}

// Skips a nested {...} or [...] starting at text[i], honouring quoted strings; returns its source text.
std::string read_nested(const std::string& text, size_t& i) {
  const size_t start = i;
  int depth = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      read_quoted(text, i);
      continue;
    }
    if (c == '[' || c == '{' || c == '(') ++depth;
    if (c == ']' || c == '}' || c == ')') {
      if (--depth == 0) {
        ++i;
        return text.substr(start, i - start);
      }
    }
    ++i;
  }
  throw std::invalid_argument("unterminated bracket in list");
}

std::vector<std::string> parse_literal_list(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 1;  // after '['
  const size_t end = text.size() - 1;  // the closing ']'
  while (true) {
    while (i < end && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= end) break;
    std::string item;
    if (text[i] == '"' || text[i] == '\'') {
      item = trim(read_quoted(text, i));
    } else if (text[i] == '[' || text[i] == '{' || text[i] == '(') {
      item = read_nested(text, i);
    } else {
      const size_t s = i;
      while (i < end && text[i] != ',') ++i;
      item = trim(text.substr(s, i - s));
    }
    if (i > end) throw std::invalid_argument("unterminated list");
    out.push_back(std::move(item));
    while (i < end && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= end) break;
    if (text[i] != ',') throw std::invalid_argument("expected ',' in list");
    ++i;  // a trailing comma before ']' is allowed, as in Python
  }
  return out;
}

}  // namespace

std::vector<std::string> parse_list_value(const std::string& raw) {
  const std::string text = trim(raw);
  if (text.empty()) return {};
  if (text.front() == '[') {
    if (text.back() != ']') throw std::invalid_argument("list starts with '[' but does not end with ']'");
    return parse_literal_list(text);
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') && item.back() == item.front())
      item = item.substr(1, item.size() - 2);
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace kl::config
