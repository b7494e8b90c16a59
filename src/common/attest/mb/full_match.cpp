#define PCRE2_CODE_UNIT_WIDTH 8
#include "common/attest/mb/full_match.hpp"

#include <stdexcept>

#include <pcre2.h>

namespace kl::mb::detail {

struct FullMatch::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

FullMatch::FullMatch(std::string pattern, bool dotall) : pattern_(std::move(pattern)) {
  int err = 0;
  PCRE2_SIZE off = 0;
  // Anchored at both ends = Python's fullmatch; UTF so that "." is one character, as in a Python str.
  std::uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | (dotall ? PCRE2_DOTALL : 0u);
  pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(), opts, &err, &off,
                                nullptr);
  if (!c) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw std::invalid_argument("bad regular expression " + pattern_ + ": " + reinterpret_cast<const char*>(msg));
  }
  auto code = std::make_shared<Code>();
  code->code = c;
  code_ = std::move(code);
}

bool FullMatch::matches(std::string_view subject) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) return false;
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

}  // namespace kl::mb::detail
