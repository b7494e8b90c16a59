// IMA keyrings and file-signature verification (verification.md §4.5): keys indexed by keyidv2,
// signature_v2_hdr parsing, key extraction from ima-buf data.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"

namespace kl::ima {

// Immutable shared key (RSA or EC public key).
using PublicKey = std::shared_ptr<EVP_PKEY>;

// keyidv2: last 4 bytes (big-endian) of SHA-1 over DER PKCS#1 RSAPublicKey / X9.62 uncompressed point.
// nullopt for a key that is neither RSA nor EC.
std::optional<std::uint32_t> keyidv2_of(EVP_PKEY*);

class ImaKeyring {
 public:
  // keyid nullopt or 0 => computed (upstream treats a falsy keyid as absent). Later keys with the
  // same id replace earlier ones.
  void add(PublicKey key, std::optional<std::uint32_t> keyid = std::nullopt);
  EVP_PKEY* find(std::uint32_t keyid) const;
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }

  // {"pubkeys": [b64 DER SPKI...], "keyids": [int...]} in insertion order.
  nlohmann::json to_json() const;
  // Upstream ImaKeyring.from_string: "" => nullopt; a JSON string holding JSON is decoded twice;
  // not an object or not matching the keyring schema ({keyids:[int], pubkeys:[str]} required,
  // meta.version >= 1) => nullopt; keys that do not load (or are not RSA/EC) are skipped.
  static std::optional<ImaKeyring> from_string(std::string_view text);
  // The schema check alone (for runtime policy validation of `verification-keys`).
  static bool valid_keyring_json(const nlohmann::json&);

 private:
  std::vector<std::pair<std::uint32_t, PublicKey>> keys_;  // insertion order, unique ids
};

// Named keyrings: learned ones (".ima", ".builtin_trusted_keys", ...) plus the tenant keyring.
class ImaKeyrings {
 public:
  void add_key(const std::string& keyring_name, PublicKey key, std::optional<std::uint32_t> keyid);
  void set_tenant_keyring(std::optional<ImaKeyring> ring);  // stored under "tenant_keyring"
  const std::map<std::string, ImaKeyring>& keyrings() const { return rings_; }
  bool empty() const { return rings_.empty(); }
  EVP_PKEY* find(std::uint32_t keyid) const;  // first keyring holding the id

  // Upstream ImaKeyrings.to_json: name -> keyring JSON *string*, tenant keyring excluded.
  nlohmann::json to_json() const;
  static ImaKeyrings from_json(const nlohmann::json&);  // tolerant: bad keyrings are skipped

 private:
  std::map<std::string, ImaKeyring> rings_;
};

// signature_v2_hdr (big-endian): type (3|5), version 2, hash_algo (Linux id), u32 keyid,
// u16 sig_size, signature. Verifies RSA PKCS#1 v1.5 / ECDSA over the precomputed file digest.
// The hash algorithm must equal `digest_algorithm` (the d-ng prefix). False on any problem.
bool verify_file_signature(const ImaKeyrings& rings, ByteView signature, ByteView file_digest,
                           std::string_view digest_algorithm);
// Same, with a single extra keyring searched after `rings` (the tenant keyring) - avoids copies.
bool verify_file_signature(const ImaKeyrings& rings, const ImaKeyring* extra, ByteView signature,
                           ByteView file_digest, std::string_view digest_algorithm);

// Key carried by an ima-buf entry: tries DER X.509, PEM X.509, DER SPKI, PEM SPKI, DER private key,
// PEM private key. Returns nullopt when the data is not a key. Throws std::invalid_argument when it
// is a key but neither RSA nor EC (upstream's ValueError => `ima.invalid_key`).
struct BufferKey {
  PublicKey key;
  std::optional<std::uint32_t> keyid;  // from the certificate's Subject Key Identifier, if any
};
std::optional<BufferKey> key_from_buffer(ByteView data);

// Loads a PEM public key / certificate / private key file's text into a key (tests, tools).
PublicKey load_public_key_pem(std::string_view pem);

}  // namespace kl::ima
