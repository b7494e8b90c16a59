#include "common/attest/ima/measurement_list.hpp"

#include <cstdio>
#include <cstring>

#include "common/attest/parse_error.hpp"

namespace kl::ima {

namespace {

constexpr std::size_t kEventNameLenMax = 255;  // TCG_EVENT_NAME_LEN_MAX: `n` is padded to 256 bytes

// Python str.split(" ", maxsplit): single-space separators, empty tokens kept.
std::vector<std::string_view> split_spaces(std::string_view s, std::size_t maxsplit) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (out.size() < maxsplit) {
    std::size_t pos = s.find(' ', start);
    if (pos == std::string_view::npos) break;
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs.
std::optional<Bytes> from_hex(std::string_view s) {
  Bytes out;
  out.reserve(s.size() / 2);
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_py_space(s[i])) {
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Digest parse_digest(std::string_view text) {
  Digest d;
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    auto h = from_hex(text);
    if (!h) throw ParseError("Digest hash is not valid hex. Got: " + std::string(text));
    if (h->size() == 20) d.algorithm = "sha1";
    else if (h->size() == 16) d.algorithm = "md5";
    else
      throw ParseError(
          "Cannot create Digest. No hash algorithm is provided and hash does not belong to a md5 or sha1 hash.");
    d.hash = std::move(*h);
    return d;
  }
  if (text.find(':', colon + 1) != std::string_view::npos)
    throw ParseError("Cannot create Digest expected 1 or 2 tokens for " + std::string(text));
  auto h = from_hex(text.substr(colon + 1));
  if (!h) throw ParseError("Digest hash is not valid hex. Got: " + std::string(text.substr(colon + 1)));
  d.algorithm = std::string(text.substr(0, colon));
  d.hash = std::move(*h);
  return d;
}

// signature_v2_hdr sanity: at least the 9-byte header and 9 + sig_size == length.
std::optional<Bytes> parse_signature_token(std::string_view token) {
  auto b = from_hex(token);
  if (!b || b->size() < 9) return std::nullopt;
  std::size_t sig_size = (static_cast<std::size_t>((*b)[7]) << 8) | (*b)[8];
  if (9 + sig_size != b->size()) return std::nullopt;
  return b;
}

void put_u32le(Bytes& out, std::size_t v) {
  auto x = static_cast<std::uint32_t>(v);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

}  // namespace

std::string_view template_name(Template t) {
  switch (t) {
    case Template::ima: return "ima";
    case Template::ima_ng: return "ima-ng";
    case Template::ima_sig: return "ima-sig";
    case Template::ima_buf: return "ima-buf";
  }
  return "?";
}

Entry parse_entry(std::string_view line) {
  auto tokens = split_spaces(line, 3);
  if (tokens.size() != 4)
    throw ParseError("Cannot create Entry expected 4 tokens got: " + std::to_string(tokens.size()) + ".");
  Entry e;
  e.pcr = std::string(tokens[0]);
  auto th = from_hex(tokens[1]);
  if (!th) throw ParseError("Cannot create Entry: template hash is not valid hex.");
  e.template_hash = std::move(*th);
  const std::string_view mode = tokens[2];
  const std::string_view rest = tokens[3];
  if (mode == "ima" || mode == "ima-ng") {
    e.kind = mode == "ima" ? Template::ima : Template::ima_ng;
    auto t = split_spaces(rest, 1);
    if (t.size() != 2) throw ParseError("Cannot create ImaNg expected 2 tokens got: " + std::to_string(t.size()) + ".");
    if (e.kind == Template::ima) {
      // `d` is the raw legacy digest: bare hex only (a prefix would make it 3+ tokens of ':' -> error)
      e.digest = parse_digest(t[0]);  // "algo:hex" is accepted too; `d` is then the raw hash
      // upstream's struct.pack fails on longer names; we report it as a parse error
      if (t[1].size() > kEventNameLenMax) throw ParseError("Name too long for the `ima` template");
    } else {
      e.digest = parse_digest(t[0]);
    }
    e.name = std::string(t[1]);
    return e;
  }
  if (mode == "ima-sig" || mode == "ima-buf") {
    e.kind = mode == "ima-sig" ? Template::ima_sig : Template::ima_buf;
    auto t = split_spaces(rest, 2);
    if (t.size() != 3)
      throw ParseError(std::string("Cannot create ") + (e.kind == Template::ima_sig ? "ImaSig" : "ImaBuf") +
                       " expected 3 tokens got: " + std::to_string(t.size()) + ".");
    e.digest = parse_digest(t[0]);
    e.name = std::string(t[1]);
    if (e.kind == Template::ima_sig) {
      e.signature = parse_signature_token(t[2]);
    } else {
      auto b = from_hex(t[2]);
      if (!b) throw ParseError("Provided data was not valid hex: " + std::string(t[2]));
      e.buffer = std::move(*b);
    }
    return e;
  }
  throw ParseError("No parser for mode " + std::string(mode) + " implemented.");
}

Bytes template_data(const Entry& e) {
  Bytes out;
  out.reserve(e.digest.algorithm.size() + e.digest.hash.size() + e.name.size() + 32 +
              (e.signature ? e.signature->size() : 0) + e.buffer.size() + (e.kind == Template::ima ? 256 : 0));
  if (e.kind == Template::ima) {
    out.insert(out.end(), e.digest.hash.begin(), e.digest.hash.end());
    out.insert(out.end(), e.name.begin(), e.name.end());
    out.resize(out.size() + (kEventNameLenMax + 1 - e.name.size()), 0);  // NUL + zero padding to 256
    return out;
  }
  put_u32le(out, e.digest.algorithm.size() + 2 + e.digest.hash.size());
  out.insert(out.end(), e.digest.algorithm.begin(), e.digest.algorithm.end());
  out.push_back(':');
  out.push_back(0);
  out.insert(out.end(), e.digest.hash.begin(), e.digest.hash.end());
  put_u32le(out, e.name.size() + 1);
  out.insert(out.end(), e.name.begin(), e.name.end());
  out.push_back(0);
  if (e.kind == Template::ima_sig) {
    if (e.signature) {
      put_u32le(out, e.signature->size());
      out.insert(out.end(), e.signature->begin(), e.signature->end());
    } else {
      put_u32le(out, 0);
    }
  } else if (e.kind == Template::ima_buf) {
    put_u32le(out, e.buffer.size());
    out.insert(out.end(), e.buffer.begin(), e.buffer.end());
  }
  return out;
}

std::vector<ListLine> parse_list(std::string_view text) {
  std::vector<ListLine> out;
  out.reserve(text.size() / 100 + 1);
  std::size_t index = 0, start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(start, end - start);
    if (!line.empty()) {
      ListLine l;
      l.index = index;
      l.text = line;
      try {
        l.entry = parse_entry(line);
      } catch (const ParseError& e) {
        l.error = e.what();
      }
      out.push_back(std::move(l));
    }
    ++index;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string python_bytes_repr(ByteView b) {
  bool has_single = false, has_double = false;
  for (auto c : b) {
    has_single |= c == '\'';
    has_double |= c == '"';
  }
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (auto c : b) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  out += quote;
  return out;
}

}  // namespace kl::ima
