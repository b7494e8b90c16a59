#include "tools/policy/measurement_list_digests.hpp"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "tools/policy/digest_algorithm.hpp"

namespace kl::tools {
namespace {

template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    f(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
}

std::string_view rstrip_newline(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\v\f";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// Upstream only asks whether the buffer deserialises as a (DER or PEM) certificate.
bool is_certificate(ByteView data) {
  const unsigned char* p = data.data();
  ossl::X509Ptr der(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
  if (der && p == data.data() + data.size()) return true;
  ossl::Bio bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return false;
  ossl::X509Ptr pem(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();  // a failed probe is not an error
  return pem != nullptr;
}

}  // namespace

std::vector<std::string_view> split_on_space(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) {
      out.push_back(line.substr(pos));
      return out;
    }
    out.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
}

std::pair<std::string, std::string> boot_aggregate_parse(std::string_view line) {
  const std::pair<std::string, std::string> invalid{std::string(kInvalidAlgorithm), ""};
  if (line.empty()) return invalid;
  auto pieces = split_on_space(line);
  if (pieces.size() < 5) return invalid;
  if (pieces[2] != "ima-sig" && pieces[2] != "ima-ng" && pieces[2] != "ima") return invalid;
  std::string alg, csum;
  std::string_view d = pieces[3];
  const auto colons = std::count(d.begin(), d.end(), ':');
  if (colons == 1) {
    auto c = d.find(':');
    alg = std::string(d.substr(0, c));
    csum = std::string(d.substr(c + 1));
    if (!is_recognized_algorithm(alg) || csum.size() != hex_size_of(alg)) return invalid;
  } else if (colons == 0) {
    csum = std::string(d);  // old "ima" template: guess by length
    alg = algorithm_from_hex(csum);
    if (alg == kInvalidAlgorithm) return invalid;
  } else {
    return invalid;
  }
  if (rstrip_newline(pieces[4]) != "boot_aggregate") return invalid;
  return {alg, csum};
}

std::pair<std::string, std::string> boot_aggregate_of_list(std::string_view list_text) {
  auto nl = list_text.find('\n');
  return boot_aggregate_parse(list_text.substr(0, nl));
}

void add_measurement_list_digests(std::string_view list_text, kl::policy::DigestMap& digests) {
  for_each_line(list_text, [&](std::string_view line) {
    auto pieces = split_on_space(line);
    if (pieces.size() < 5) return;
    if (pieces[2] != "ima-sig" && pieces[2] != "ima-ng") return;
    auto c = pieces[3].find(':');
    if (c == std::string_view::npos) return;  // upstream would fail on such a line
    std::string_view csum = pieces[3].substr(c + 1);
    csum = csum.substr(0, csum.find(':'));
    digests[std::string(rstrip_newline(pieces[4]))].emplace_back(csum);
  });
}

void add_ima_buf_digests(std::string_view list_text, const std::vector<std::string>& ignored_keyrings,
                         bool get_keyrings, kl::policy::DigestMap& keyrings, bool get_ima_buf,
                         kl::policy::DigestMap& ima_buf) {
  for_each_line(list_text, [&](std::string_view line) {
    auto pieces = split_on_space(line);
    if (pieces.size() != 6 || pieces[2] != "ima-buf") return;
    auto c = pieces[3].find(':');
    if (c == std::string_view::npos) return;
    std::string_view csum = pieces[3].substr(c + 1);
    csum = csum.substr(0, csum.find(':'));
    std::string path(pieces[4]);
    auto data = hex_decode(strip(pieces[5]));
    if (data && !data->empty() && is_certificate(*data)) {
      if (!get_keyrings || std::find(ignored_keyrings.begin(), ignored_keyrings.end(), path) != ignored_keyrings.end())
        return;
      keyrings[path].emplace_back(csum);
      return;
    }
    if (get_ima_buf) ima_buf[path].emplace_back(csum);
  });
}

}  // namespace kl::tools
