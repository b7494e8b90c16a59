#include "common/attest/policy/compiled_policy.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/attest/parse_error.hpp"

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

namespace {
std::uint64_t hash_path(std::string_view s) { return std::hash<std::string_view>{}(s); }

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void store(std::vector<char>& out, T v) {
  const auto at = out.size();
  out.resize(at + sizeof v);
  std::memcpy(out.data() + at, &v, sizeof v);
}

std::string_view sv(const std::string& s) { return s; }
std::string_view sv(const nlohmann::json& j) { return j.get_ref<const std::string&>(); }

// (path, list) views over a DigestMap and over a JSON object, for one table builder.
struct MapView {
  const DigestMap& m;
  std::size_t size() const { return m.size(); }
  template <class F>
  void each(F&& f) const {
    for (const auto& [k, v] : m) f(std::string_view(k), v);
  }
};
struct JsonView {
  const nlohmann::json& j;
  std::size_t size() const { return j.size(); }
  template <class F>
  void each(F&& f) const {
    for (auto it = j.begin(); it != j.end(); ++it) f(std::string_view(it.key()), it.value());
  }
};
}  // namespace

DigestTable::DigestTable(const DigestMap& map) { build(MapView{map}); }

DigestTable DigestTable::from_json(const nlohmann::json& object, const char* what) {
  if (!object.is_object()) throw ParseError(std::string("runtime policy: '") + what + "' must be an object");
  for (const auto& [k, v] : object.items()) {
    if (!v.is_array()) throw ParseError(std::string("runtime policy: '") + what + "' values must be lists");
    for (const auto& h : v)
      if (!h.is_string()) throw ParseError(std::string("runtime policy: '") + what + "' values must be strings");
  }
  DigestTable t;
  t.build(JsonView{object});
  return t;
}

template <class Object>
void DigestTable::build(const Object& map) {
  std::size_t arena = 0;
  map.each([&](std::string_view path, const auto& list) {
    arena += 8 + path.size();
    for (const auto& item : list) {
      const std::string_view v = sv(item);
      arena += 3 + (lower_hex(v) ? v.size() / 2 : std::min<std::size_t>(v.size(), 0xFFFF));
    }
  });
  if (arena >= Slot::kEmpty) throw std::length_error("runtime policy too large");
  arena_.reserve(arena);
  std::size_t cap = 16;
  while (cap < map.size() * 2) cap *= 2;
  slots_.assign(cap, Slot{});
  map.each([&](std::string_view path, const auto& list) {
    const auto off = static_cast<std::uint32_t>(arena_.size());
    store<std::uint32_t>(arena_, static_cast<std::uint32_t>(path.size()));
    store<std::uint32_t>(arena_, static_cast<std::uint32_t>(list.size()));
    arena_.insert(arena_.end(), path.begin(), path.end());
    for (const auto& item : list) {
      const std::string_view v = sv(item);
      const bool raw = lower_hex(v) && v.size() / 2 <= 0xFFFF;
      const auto len = static_cast<std::uint16_t>(raw ? v.size() / 2 : std::min<std::size_t>(v.size(), 0xFFFF));
      arena_.push_back(raw ? 1 : 0);
      store<std::uint16_t>(arena_, len);
      const std::size_t at = arena_.size();
      arena_.resize(at + len);
      if (raw) {
        for (std::size_t i = 0; i < len; ++i) arena_[at + i] = static_cast<char>(nib(v[2 * i]) * 16 + nib(v[2 * i + 1]));
      } else {
        std::memcpy(arena_.data() + at, v.data(), len);
      }
    }
    const std::uint64_t h = hash_path(path);
    std::size_t i = h & (cap - 1);
    while (slots_[i].offset != Slot::kEmpty) i = (i + 1) & (cap - 1);
    slots_[i] = Slot{h, off};
    ++size_;
  });
}

std::optional<DigestTable::Hit> DigestTable::find(std::string_view path) const {
  if (slots_.empty()) return std::nullopt;
  const std::uint64_t h = hash_path(path);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.offset == Slot::kEmpty) return std::nullopt;
    if (s.hash != h) continue;
    const char* rec = arena_.data() + s.offset;
    if (load<std::uint32_t>(rec) == path.size() && std::memcmp(rec + 8, path.data(), path.size()) == 0)
      return Hit{rec};
  }
}

void DigestTable::prefetch_slot(std::string_view path) const {
  if (slots_.empty()) return;
  __builtin_prefetch(&slots_[hash_path(path) & (slots_.size() - 1)]);
}

void DigestTable::prefetch_record(std::string_view path) const {
  if (slots_.empty()) return;
  const std::uint64_t h = hash_path(path);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.offset == Slot::kEmpty) return;
    if (s.hash == h) {
      __builtin_prefetch(arena_.data() + s.offset);
      return;
    }
  }
}

bool DigestTable::Hit::contains(ByteView digest) const {
  const std::uint32_t path_len = load<std::uint32_t>(record), count = load<std::uint32_t>(record + 4);
  const char* p = record + 8 + path_len;
  for (std::uint32_t i = 0; i < count; ++i) {
    const bool raw = p[0] != 0;
    const std::uint16_t len = load<std::uint16_t>(p + 1);
    if (raw && len == digest.size() && std::memcmp(p + 3, digest.data(), len) == 0) return true;
    p += 3 + len;
  }
  return false;
}

std::vector<std::string> DigestTable::Hit::as_strings() const {
  std::vector<std::string> out;
  const std::uint32_t path_len = load<std::uint32_t>(record), count = load<std::uint32_t>(record + 4);
  const char* p = record + 8 + path_len;
  for (std::uint32_t i = 0; i < count; ++i) {
    const bool raw = p[0] != 0;
    const std::uint16_t len = load<std::uint16_t>(p + 1);
    if (raw) out.push_back(hex_encode(ByteView(reinterpret_cast<const std::uint8_t*>(p + 3), len)));
    else out.emplace_back(p + 3, len);
    p += 3 + len;
  }
  return out;
}

std::size_t DigestTable::memory_bytes() const { return arena_.capacity() + slots_.capacity() * sizeof(Slot); }

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
  if (!policy.is_object()) throw ParseError("runtime policy: not a JSON object");
  // Everything but the three big maps goes through the model; the maps go straight into tables.
  nlohmann::json light = nlohmann::json::object();
  for (auto it = policy.begin(); it != policy.end(); ++it)
    if (it.key() != "digests" && it.key() != "keyrings" && it.key() != "ima-buf") light[it.key()] = it.value();
  RuntimePolicy p = runtime_policy_from_json(light);
  auto table = [&](const char* key) {
    return policy.contains(key) ? DigestTable::from_json(policy[key], key) : DigestTable();
  };
  DigestTable digests = table("digests"), keyrings = table("keyrings"), ima_buf = table("ima-buf");
  auto c = compile(p);  // validates excludes etc. with empty maps
  auto m = std::const_pointer_cast<CompiledPolicy>(c);
  m->digests_ = std::move(digests);
  m->keyrings_ = std::move(keyrings);
  m->ima_buf_ = std::move(ima_buf);
  return c;
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
