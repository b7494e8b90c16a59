#include "common/attest/ima/measurement_list.hpp"

#include <cstdio>
#include <cstring>

#include "common/attest/parse_error.hpp"

namespace kl::ima {

namespace {

constexpr std::size_t kEventNameLenMax = 255;  // TCG_EVENT_NAME_LEN_MAX: `n` is padded to 256 bytes

// Python str.split(" ", maxsplit) for maxsplit <= 3: single-space separators, empty tokens kept.
struct Tokens {
  std::string_view t[4];
  std::size_t n = 0;
  std::size_t size() const { return n; }
  std::string_view operator[](std::size_t i) const { return t[i]; }
};
Tokens split_spaces(std::string_view s, std::size_t maxsplit) {
  Tokens out;
  std::size_t start = 0;
  while (out.n < maxsplit) {
    std::size_t pos = s.find(' ', start);
    if (pos == std::string_view::npos) break;
    out.t[out.n++] = s.substr(start, pos - start);
    start = pos + 1;
  }
  out.t[out.n++] = s.substr(start);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Nibble values, -1 for non-hex: the replay loop decodes two hex fields per line.
struct HexTable {
  signed char v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = -1;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<signed char>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<signed char>(10 + i);
      v['A' + i] = static_cast<signed char>(10 + i);
    }
  }
};
constexpr HexTable kHex;

// Python bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs.
bool from_hex_into(std::string_view s, Bytes& out) {
  out.resize(s.size() / 2);
  if (s.size() % 2 == 0) {  // fast path: no whitespace
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    bool ok = true;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const int hi = kHex.v[p[2 * i]], lo = kHex.v[p[2 * i + 1]];
      ok &= (hi | lo) >= 0;
      out[i] = static_cast<std::uint8_t>((hi << 4) | (lo & 0xF));
    }
    if (ok) return true;
  }
  std::size_t n = 0, i = 0;
  while (i < s.size()) {
    if (is_py_space(s[i])) {
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return false;
    int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[n++] = static_cast<std::uint8_t>(hi * 16 + lo);
    i += 2;
  }
  out.resize(n);
  return true;
}



void parse_digest(std::string_view text, Digest& d) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    if (!from_hex_into(text, d.hash)) throw ParseError("Digest hash is not valid hex. Got: " + std::string(text));
    if (d.hash.size() == 20) d.algorithm = "sha1";
    else if (d.hash.size() == 16) d.algorithm = "md5";
    else
      throw ParseError(
          "Cannot create Digest. No hash algorithm is provided and hash does not belong to a md5 or sha1 hash.");
    return;
  }
  if (text.find(':', colon + 1) != std::string_view::npos)
    throw ParseError("Cannot create Digest expected 1 or 2 tokens for " + std::string(text));
  if (!from_hex_into(text.substr(colon + 1), d.hash))
    throw ParseError("Digest hash is not valid hex. Got: " + std::string(text.substr(colon + 1)));
  d.algorithm.assign(text.substr(0, colon));
}

// signature_v2_hdr sanity: at least the 9-byte header and 9 + sig_size == length.
void parse_signature_token(std::string_view token, std::optional<Bytes>& out) {
  if (token.empty()) {
    out.reset();
    return;
  }
  if (!out) out.emplace();
  Bytes& b = *out;
  if (!from_hex_into(token, b) || b.size() < 9 || 9 + ((static_cast<std::size_t>(b[7]) << 8) | b[8]) != b.size())
    out.reset();
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
  Entry e;
  parse_entry(line, e);
  return e;
}

void parse_entry(std::string_view line, Entry& e) {
  auto tokens = split_spaces(line, 3);
  if (tokens.size() != 4)
    throw ParseError("Cannot create Entry expected 4 tokens got: " + std::to_string(tokens.size()) + ".");
  e.pcr.assign(tokens[0]);
  if (!from_hex_into(tokens[1], e.template_hash)) throw ParseError("Cannot create Entry: template hash is not valid hex.");
  const std::string_view mode = tokens[2];
  const std::string_view rest = tokens[3];
  e.signature.reset();
  e.buffer.clear();
  if (mode == "ima" || mode == "ima-ng") {
    e.kind = mode == "ima" ? Template::ima : Template::ima_ng;
    auto t = split_spaces(rest, 1);
    if (t.size() != 2) throw ParseError("Cannot create ImaNg expected 2 tokens got: " + std::to_string(t.size()) + ".");
    parse_digest(t[0], e.digest);  // for `ima`, "algo:hex" is accepted too; `d` is then the raw hash
    // upstream's struct.pack fails on longer `n` names; we report it as a parse error
    if (e.kind == Template::ima && t[1].size() > kEventNameLenMax) throw ParseError("Name too long for the `ima` template");
    e.name.assign(t[1]);
    return;
  }
  if (mode == "ima-sig" || mode == "ima-buf") {
    e.kind = mode == "ima-sig" ? Template::ima_sig : Template::ima_buf;
    auto t = split_spaces(rest, 2);
    if (t.size() != 3)
      throw ParseError(std::string("Cannot create ") + (e.kind == Template::ima_sig ? "ImaSig" : "ImaBuf") +
                       " expected 3 tokens got: " + std::to_string(t.size()) + ".");
    parse_digest(t[0], e.digest);
    e.name.assign(t[1]);
    if (e.kind == Template::ima_sig) {
      parse_signature_token(t[2], e.signature);
    } else if (!from_hex_into(t[2], e.buffer)) {
      throw ParseError("Provided data was not valid hex: " + std::string(t[2]));
    }
    return;
  }
  throw ParseError("No parser for mode " + std::string(mode) + " implemented.");
}

Bytes template_data(const Entry& e) {
  Bytes out;
  template_data(e, out);
  return out;
}

void template_data(const Entry& e, Bytes& out) {
  out.clear();
  out.reserve(e.digest.algorithm.size() + e.digest.hash.size() + e.name.size() + 32 +
              (e.signature ? e.signature->size() : 0) + e.buffer.size() + (e.kind == Template::ima ? 256 : 0));
  if (e.kind == Template::ima) {
    out.insert(out.end(), e.digest.hash.begin(), e.digest.hash.end());
    out.insert(out.end(), e.name.begin(), e.name.end());
    out.resize(out.size() + (kEventNameLenMax + 1 - e.name.size()), 0);  // NUL + zero padding to 256
    return;
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
