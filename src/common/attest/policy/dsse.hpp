// DSSE envelopes for signed runtime policies (verification.md §4.3): PAE, field decoding with
// upstream's hex -> base64 -> URL-safe base64 fallback, ECDSA-SHA256 verification and signing.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"

namespace kl::policy::dsse {

inline constexpr std::string_view kKeylimePayloadType = "application/vnd.keylime+json";

struct Signature {
  std::string keyid;
  Bytes sig;  // DER ECDSA signature
};
struct Envelope {
  Bytes payload;
  std::string payload_type;
  std::vector<Signature> signatures;  // entries whose `sig` does not decode are dropped
};

// Upstream treats a document as DSSE iff it has a truthy "payload" key.
bool is_envelope(const nlohmann::json& doc);
// Throws kl::ParseError when payload is missing/undecodable or fields have the wrong types.
Envelope parse_envelope(const nlohmann::json& doc);
// hex first, then strict standard base64, then URL-safe base64 (padding required as Python's).
std::optional<Bytes> decode_field(std::string_view text);

// "DSSEv1 <len(type)> <type> <len(payload)> <payload>".
Bytes pae(std::string_view payload_type, ByteView payload);

// At least one signature verifies (ECDSA-SHA256 over PAE) with `key`.
bool verify_with_key(const Envelope&, EVP_PKEY* key);
// No key given: each signature's keyid is base64 of a PEM X.509 certificate whose key verifies it.
bool verify_with_embedded_certificates(const Envelope&);

// SHA-256 hex of the PEM SubjectPublicKeyInfo text (upstream's verifier-side ECDSA keyid).
std::string keyid_of(EVP_PKEY* key);
// Signs with an EC private key (RSA keys are rejected with std::invalid_argument, as upstream's
// DSSE signer is EC-only). Returns {"payload","payloadType","signatures":[{"keyid","sig"}]}.
nlohmann::json sign(ByteView payload, std::string_view payload_type, EVP_PKEY* ec_private_key);

}  // namespace kl::policy::dsse
