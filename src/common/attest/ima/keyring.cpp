#define OPENSSL_SUPPRESS_DEPRECATED  // EC_KEY for the X9.62 uncompressed point of the keyid
#include "common/attest/ima/keyring.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"

namespace kl::ima {

namespace {

PublicKey share(EVP_PKEY* raw) { return PublicKey(raw, EVP_PKEY_free); }

bool supported_type(EVP_PKEY* k) {
  const int id = EVP_PKEY_get_base_id(k);
  return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
}

// Public half only: keys learned from private-key buffers must not keep private material around.
PublicKey public_only(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(k, &der);
  if (len <= 0) return nullptr;
  const unsigned char* p = der;
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, len);
  OPENSSL_free(der);
  return pub ? share(pub) : nullptr;
}

int no_password(char*, int, int, void*) { return -1; }  // never prompt on a terminal

ossl::Bio mem_bio(ByteView data) {
  return ossl::Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

struct LinuxHash {
  int id;
  const char* name;  // Python cryptography's hash name, compared with the d-ng algorithm prefix
};
constexpr LinuxHash kLinuxHashes[] = {{1, "md5"},     {2, "sha1"},   {4, "sha256"},       {5, "sha384"},
                                      {6, "sha512"},  {7, "sha224"}, {18, "streebog256"}, {19, "streebog512"}};

bool verify_raw(EVP_PKEY* key, ByteView sig, ByteView digest, const char* md_name) {
  const EVP_MD* md = EVP_get_digestbyname(md_name);
  if (!md) return false;  // e.g. streebog: not in OpenSSL's default provider
  if (digest.size() != static_cast<std::size_t>(EVP_MD_get_size(md))) return false;
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) return false;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)
    return false;
  if (EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1) return false;
  const int rc = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size());
  ERR_clear_error();
  return rc == 1;
}

}  // namespace

std::optional<std::uint32_t> keyidv2_of(EVP_PKEY* key) {
  Bytes material;
  const int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_RSA) {
    const RSA* rsa = EVP_PKEY_get0_RSA(key);
    unsigned char* der = nullptr;
    int len = rsa ? i2d_RSAPublicKey(rsa, &der) : -1;
    if (len <= 0) return std::nullopt;
    material.assign(der, der + len);
    OPENSSL_free(der);
  } else if (id == EVP_PKEY_EC) {
    const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
    if (!ec || !EC_KEY_get0_public_key(ec)) return std::nullopt;
    const EC_GROUP* g = EC_KEY_get0_group(ec);
    std::size_t len = EC_POINT_point2oct(g, EC_KEY_get0_public_key(ec), POINT_CONVERSION_UNCOMPRESSED, nullptr, 0, nullptr);
    if (len == 0) return std::nullopt;
    material.resize(len);
    EC_POINT_point2oct(g, EC_KEY_get0_public_key(ec), POINT_CONVERSION_UNCOMPRESSED, material.data(), len, nullptr);
  } else {
    return std::nullopt;
  }
  const Bytes d = crypto::digest(crypto::HashAlg::sha1, material);
  return (std::uint32_t{d[16]} << 24) | (std::uint32_t{d[17]} << 16) | (std::uint32_t{d[18]} << 8) | d[19];
}

// ---------------------------------------------------------------- ImaKeyring

void ImaKeyring::add(PublicKey key, std::optional<std::uint32_t> keyid) {
  if (!key) return;
  if (!keyid || *keyid == 0) keyid = keyidv2_of(key.get());
  if (!keyid) return;
  for (auto& [id, k] : keys_)
    if (id == *keyid) {
      k = std::move(key);
      return;
    }
  keys_.emplace_back(*keyid, std::move(key));
}

EVP_PKEY* ImaKeyring::find(std::uint32_t keyid) const {
  for (const auto& [id, k] : keys_)
    if (id == keyid) return k.get();
  return nullptr;
}

nlohmann::json ImaKeyring::to_json() const {
  nlohmann::json pubkeys = nlohmann::json::array(), keyids = nlohmann::json::array();
  for (const auto& [id, k] : keys_) {
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(k.get(), &der);
    if (len <= 0) continue;
    pubkeys.push_back(base64_encode(ByteView(der, static_cast<std::size_t>(len))));
    OPENSSL_free(der);
    keyids.push_back(id);
  }
  return {{"pubkeys", pubkeys}, {"keyids", keyids}};
}

bool ImaKeyring::valid_keyring_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("keyids") || !j.contains("pubkeys")) return false;
  if (!j["keyids"].is_array() || !j["pubkeys"].is_array()) return false;
  for (const auto& k : j["keyids"])
    if (!k.is_number_integer()) return false;
  for (const auto& k : j["pubkeys"])
    if (!k.is_string()) return false;
  if (j.contains("meta")) {
    const auto& m = j["meta"];
    if (!m.is_object() || !m.contains("version") || !m["version"].is_number_integer() ||
        m["version"].get<std::int64_t>() < 1)
      return false;
  }
  return true;
}

std::optional<ImaKeyring> ImaKeyring::from_string(std::string_view text) {
  if (text.empty()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  if (j.is_string()) {
    j = nlohmann::json::parse(j.get<std::string>(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
  }
  if (!valid_keyring_json(j)) return std::nullopt;
  ImaKeyring ring;
  const auto& pubkeys = j["pubkeys"];
  const auto& keyids = j["keyids"];
  for (std::size_t i = 0; i < pubkeys.size(); ++i) {
    auto der = base64_decode_ignoring_whitespace(pubkeys[i].get<std::string>());
    if (!der) continue;
    const unsigned char* p = der->data();
    EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size()));
    if (!raw) {
      ERR_clear_error();
      continue;
    }
    PublicKey key = share(raw);
    if (!supported_type(key.get())) continue;
    std::optional<std::uint32_t> keyid;
    if (i < keyids.size()) {
      auto v = keyids[i].get<std::int64_t>();
      if (v < 0 || v > 0xFFFFFFFFLL) continue;  // can never match a signature's 32-bit keyid
      keyid = static_cast<std::uint32_t>(v);
    }
    ring.add(std::move(key), keyid);
  }
  return ring;
}

// ---------------------------------------------------------------- ImaKeyrings

void ImaKeyrings::add_key(const std::string& name, PublicKey key, std::optional<std::uint32_t> keyid) {
  rings_[name].add(std::move(key), keyid);
}

void ImaKeyrings::set_tenant_keyring(std::optional<ImaKeyring> ring) {
  if (ring && !ring->empty()) rings_["tenant_keyring"] = std::move(*ring);
  else rings_.erase("tenant_keyring");
}

EVP_PKEY* ImaKeyrings::find(std::uint32_t keyid) const {
  for (const auto& [name, ring] : rings_)
    if (auto* k = ring.find(keyid)) return k;
  return nullptr;
}

nlohmann::json ImaKeyrings::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, ring] : rings_) {
    if (name == "tenant_keyring") continue;
    j[name] = ring.to_json().dump(-1);
  }
  return j;
}

ImaKeyrings ImaKeyrings::from_json(const nlohmann::json& j) {
  ImaKeyrings out;
  if (!j.is_object()) return out;
  for (const auto& [name, value] : j.items()) {
    std::optional<ImaKeyring> ring;
    if (value.is_string()) ring = ImaKeyring::from_string(value.get<std::string>());
    else if (value.is_object()) ring = ImaKeyring::from_string(value.dump());
    if (ring) out.rings_[name] = std::move(*ring);
  }
  return out;
}

// ---------------------------------------------------------------- signatures

bool verify_file_signature(const ImaKeyrings& rings, const ImaKeyring* extra, ByteView sig, ByteView file_digest,
                           std::string_view digest_algorithm) {
  if (sig.size() < 2) return false;
  if (sig[0] != 3 && sig[0] != 5) return false;  // EVM_IMA_XATTR_DIGSIG / EVM_XATTR_PORTABLE_DIGSIG
  if (sig[1] != 2) return false;                 // only signature_v2_hdr
  if (sig.size() < 9) return false;
  const std::size_t sig_size = (std::size_t{sig[7]} << 8) | sig[8];
  if (sig.size() - 9 != sig_size) return false;
  const char* name = nullptr;
  for (const auto& h : kLinuxHashes)
    if (h.id == sig[2]) name = h.name;
  if (!name || digest_algorithm != name) return false;
  const std::uint32_t keyid = (std::uint32_t{sig[3]} << 24) | (std::uint32_t{sig[4]} << 16) |
                              (std::uint32_t{sig[5]} << 8) | sig[6];
  EVP_PKEY* key = rings.find(keyid);
  if (!key && extra) key = extra->find(keyid);
  if (!key) return false;
  return verify_raw(key, sig.subspan(9), file_digest, name);
}

bool verify_file_signature(const ImaKeyrings& rings, ByteView sig, ByteView file_digest,
                           std::string_view digest_algorithm) {
  return verify_file_signature(rings, nullptr, sig, file_digest, digest_algorithm);
}

// ---------------------------------------------------------------- keys from buffers

std::optional<BufferKey> key_from_buffer(ByteView data) {
  auto accept = [](EVP_PKEY* raw, std::optional<std::uint32_t> keyid) -> std::optional<BufferKey> {
    PublicKey key = share(raw);
    if (!supported_type(key.get()))
      throw std::invalid_argument(std::string("Unsupported key type ") + OBJ_nid2sn(EVP_PKEY_get_base_id(key.get())));
    auto pub = public_only(key.get());
    if (!pub) return std::nullopt;
    return BufferKey{std::move(pub), keyid};
  };
  auto from_cert = [&](X509* raw) -> std::optional<BufferKey> {
    ossl::X509Ptr cert(raw);
    std::optional<std::uint32_t> keyid;
    if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert.get()); ski && ski->length >= 4) {
      const unsigned char* d = ski->data + ski->length - 4;
      keyid = (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
    }
    EVP_PKEY* k = X509_get_pubkey(cert.get());
    if (!k) return std::nullopt;
    return accept(k, keyid);
  };
  const long len = static_cast<long>(data.size());
  {
    const unsigned char* p = data.data();
    if (X509* c = d2i_X509(nullptr, &p, len)) return from_cert(c);
  }
  {
    auto bio = mem_bio(data);
    if (X509* c = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) return from_cert(c);
  }
  {
    const unsigned char* p = data.data();
    if (EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, len)) return accept(k, std::nullopt);
  }
  {
    auto bio = mem_bio(data);
    if (EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, no_password, nullptr)) return accept(k, std::nullopt);
  }
  {
    const unsigned char* p = data.data();
    if (EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, len)) return accept(k, std::nullopt);
  }
  {
    auto bio = mem_bio(data);
    if (EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr))
      return accept(k, std::nullopt);
  }
  ERR_clear_error();
  return std::nullopt;
}

PublicKey load_public_key_pem(std::string_view pem) {
  auto r = key_from_buffer(as_bytes(pem));
  if (!r) throw std::invalid_argument("not a PEM/DER key or certificate");
  return r->key;
}

}  // namespace kl::ima
