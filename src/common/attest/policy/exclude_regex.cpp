#define PCRE2_CODE_UNIT_WIDTH 8
#include "common/attest/policy/exclude_regex.hpp"

#include <pcre2.h>

#include <cctype>
#include <stdexcept>

namespace kl::policy {

namespace {
pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

// Escapes Python's `re` knows; any other ASCII letter after a backslash is "bad escape" in Python,
// while PCRE2 would give it a meaning (\p, \K, \R, ...). Rejecting keeps the two dialects aligned.
bool python_known_escape(char c, bool in_class) {
  static const std::string_view known = "abBdDfnrsStvwWZAxuUN";
  if (in_class && (c == 'B' || c == 'A' || c == 'Z')) return false;
  return known.find(c) != std::string_view::npos;
}
}  // namespace

std::string python_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 8);
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) throw std::invalid_argument("bad escape (end of pattern)");
      const char n = p[i + 1];
      if (std::isalpha(static_cast<unsigned char>(n)) && !python_known_escape(n, in_class))
        throw std::invalid_argument(std::string("bad escape \\") + n);
      if (n == 'Z' && !in_class) out += "\\z";  // Python \Z is the absolute end (PCRE2 \z)
      else if (n == 'N') throw std::invalid_argument("bad escape \\N");  // named chars: not supported here
      else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // a ']' (or '^]') right after '[' is a literal in both dialects
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      // Python's {,n} means {0,n}; older PCRE2 treats it as a literal
      std::size_t j = i + 2;
      while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]))) ++j;
      if (j > i + 2 && j < p.size() && p[j] == '}') {
        out += "{0";
        continue;  // the ',' and digits follow unchanged
      }
    }
    out += c;
  }
  return out;
}

ExcludeRegex::ExcludeRegex(const std::vector<std::string>& excludes) {
  if (excludes.empty()) return;
  pattern_ = "(";
  for (std::size_t i = 0; i < excludes.size(); ++i) {
    if (i) pattern_ += ")|(";
    pattern_ += excludes[i];
  }
  pattern_ += ")";
  std::string translated;
  try {
    translated = python_to_pcre2(pattern_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("Invalid regex: ") + e.what() + ".");
  }
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_ANCHORED | PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw std::invalid_argument(std::string("Invalid regex: ") + reinterpret_cast<const char*>(buf) + " at position " +
                                std::to_string(off) + ".");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; interpretation still works if it fails
  code_ = code;
}

ExcludeRegex::~ExcludeRegex() {
  if (code_) pcre2_code_free(as_code(code_));
}

ExcludeRegex::Scratch::Scratch() : md_(pcre2_match_data_create(1, nullptr)) {
  if (!md_) throw std::bad_alloc();
}
ExcludeRegex::Scratch::~Scratch() { pcre2_match_data_free(static_cast<pcre2_match_data*>(md_)); }

bool ExcludeRegex::matches(std::string_view path, Scratch& scratch) const {
  if (!code_) return false;
  const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(path.data()), path.size(), 0, 0,
                             static_cast<pcre2_match_data*>(scratch.get()), nullptr);
  return rc >= 0;
}

bool ExcludeRegex::matches(std::string_view path) const {
  if (!code_) return false;
  // Match data is per call: the compiled code is shared read-only between threads.
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  if (!md) throw std::bad_alloc();
  // Anchored at compile time (re.match): JIT does not support PCRE2_ANCHORED as a match option.
  const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(path.data()), path.size(), 0, 0, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;  // 0 = matched but the ovector was too small, which is fine
}

}  // namespace kl::policy
