#include "common/attest/policy/compiled_policy.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kl::policy {

namespace {
bool lower_hex(std::string_view s) {
  if (s.empty() || s.size() % 2) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
int nib(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }
}  // namespace

DigestTable::DigestTable(const DigestMap& map) {
  // One arena sized up front so the string_view keys into it stay valid.
  std::size_t arena = 0, nvalues = 0;
  for (const auto& [path, list] : map) {
    arena += path.size();
    for (const auto& v : list) arena += lower_hex(v) ? v.size() / 2 : v.size();
    nvalues += list.size();
  }
  if (arena > 0xFFFFFFFFu || nvalues > 0xFFFFFFFFu) throw std::length_error("runtime policy too large");
  arena_.reserve(arena);
  values_.reserve(nvalues);
  index_.reserve(map.size());
  for (const auto& [path, list] : map) {
    const auto key_off = arena_.size();
    arena_.insert(arena_.end(), path.begin(), path.end());
    const auto first = static_cast<std::uint32_t>(values_.size());
    for (const auto& v : list) {
      Value val{static_cast<std::uint32_t>(arena_.size()), 0, false};
      if (lower_hex(v) && v.size() / 2 <= 0xFFFF) {
        for (std::size_t i = 0; i < v.size(); i += 2) arena_.push_back(static_cast<char>(nib(v[i]) * 16 + nib(v[i + 1])));
        val.length = static_cast<std::uint16_t>(v.size() / 2);
        val.raw = true;
      } else {
        const auto len = std::min<std::size_t>(v.size(), 0xFFFF);
        arena_.insert(arena_.end(), v.begin(), v.begin() + static_cast<std::ptrdiff_t>(len));
        val.length = static_cast<std::uint16_t>(len);
      }
      values_.push_back(val);
    }
    index_.emplace(std::string_view(arena_.data() + key_off, path.size()),
                   std::make_pair(first, static_cast<std::uint32_t>(list.size())));
  }
}

std::optional<DigestTable::Hit> DigestTable::find(std::string_view path) const {
  auto it = index_.find(path);
  if (it == index_.end()) return std::nullopt;
  return Hit{this, it->second.first, it->second.second};
}

bool DigestTable::Hit::contains(ByteView digest) const {
  for (std::uint32_t i = first; i < first + count; ++i) {
    const auto& v = table->values_[i];
    if (v.raw && v.length == digest.size() &&
        std::memcmp(table->arena_.data() + v.offset, digest.data(), digest.size()) == 0)
      return true;
  }
  return false;
}

std::vector<std::string> DigestTable::Hit::as_strings() const {
  std::vector<std::string> out;
  for (std::uint32_t i = first; i < first + count; ++i) {
    const auto& v = table->values_[i];
    const char* p = table->arena_.data() + v.offset;
    if (v.raw) out.push_back(hex_encode(ByteView(reinterpret_cast<const std::uint8_t*>(p), v.length)));
    else out.emplace_back(p, v.length);
  }
  return out;
}

std::size_t DigestTable::memory_bytes() const {
  // node: key + value + next pointer + cached hash, plus the bucket array
  const std::size_t node = sizeof(std::string_view) + sizeof(std::pair<std::uint32_t, std::uint32_t>) + 2 * sizeof(void*);
  return arena_.capacity() + values_.capacity() * sizeof(Value) + index_.size() * node +
         index_.bucket_count() * sizeof(void*);
}

std::shared_ptr<const CompiledPolicy> CompiledPolicy::compile(const RuntimePolicy& p) {
  std::shared_ptr<CompiledPolicy> c(new CompiledPolicy());
  c->excludes_ = std::make_unique<ExcludeRegex>(p.excludes);  // throws on a bad regex
  c->digests_ = DigestTable(p.digests);
  c->keyrings_ = DigestTable(p.keyrings);
  c->ima_buf_ = DigestTable(p.ima_buf);
  c->log_hash_alg_ = crypto::hash_from_name(p.ima.log_hash_alg).value_or(crypto::HashAlg::sha1);
  if (c->log_hash_alg_ == crypto::HashAlg::sm3_256) c->log_hash_alg_ = crypto::HashAlg::sha1;  // not a valid choice
  c->ignored_keyrings_ = p.ima.ignored_keyrings;
  c->ignore_all_keyrings_ =
      std::find(p.ima.ignored_keyrings.begin(), p.ima.ignored_keyrings.end(), "*") != p.ima.ignored_keyrings.end();
  if (!p.verification_keys.empty()) c->verification_keys_ = ima::ImaKeyring::from_string(p.verification_keys);
  c->generator_ = p.meta.generator;
  return c;
}

std::shared_ptr<const CompiledPolicy> CompiledPolicy::compile(const nlohmann::json& policy) {
  return compile(runtime_policy_from_json(policy));
}

bool CompiledPolicy::keyring_ignored(std::string_view name) const {
  if (ignore_all_keyrings_) return true;
  return std::find(ignored_keyrings_.begin(), ignored_keyrings_.end(), name) != ignored_keyrings_.end();
}

std::size_t CompiledPolicy::memory_bytes() const {
  return sizeof(*this) + digests_.memory_bytes() + keyrings_.memory_bytes() + ima_buf_.memory_bytes() +
         excludes_->pattern().capacity();
}

}  // namespace kl::policy
