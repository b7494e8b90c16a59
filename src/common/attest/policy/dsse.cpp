#include "common/attest/policy/dsse.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::policy::dsse {

namespace {

bool verify_ecdsa_sha256(EVP_PKEY* key, ByteView message, ByteView sig) {
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  const int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size());
  ERR_clear_error();
  return rc == 1;
}

int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// binascii.unhexlify: even length, hex digits only, either case.
std::optional<Bytes> unhexlify(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  Bytes out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hexv(s[2 * i]), lo = hexv(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

bool is_envelope(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("payload")) return false;
  const auto& p = doc["payload"];
  // Python truthiness
  if (p.is_null()) return false;
  if (p.is_boolean()) return p.get<bool>();
  if (p.is_string()) return !p.get_ref<const std::string&>().empty();  // json::empty() is false for strings
  if (p.is_array() || p.is_object()) return !p.empty();
  if (p.is_number_integer()) return p.get<std::int64_t>() != 0;
  if (p.is_number()) return p.get<double>() != 0.0;
  return true;
}

std::optional<Bytes> decode_field(std::string_view text) {
  if (auto h = unhexlify(text); h && !h->empty()) return h;  // QUIRK: hex wins when it decodes
  if (auto b = base64_decode(text)) return b;
  std::string alt(text);
  for (auto& c : alt) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  return base64_decode(alt);
}

Bytes pae(std::string_view type, ByteView payload) {
  std::string head = "DSSEv1 " + std::to_string(type.size()) + " " + std::string(type) + " " +
                     std::to_string(payload.size()) + " ";
  Bytes out(head.begin(), head.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Envelope parse_envelope(const nlohmann::json& doc) {
  if (!doc.is_object()) throw ParseError("DSSE envelope: not a JSON object");
  Envelope e;
  if (!doc.contains("payload") || !doc["payload"].is_string()) throw ParseError("DSSE envelope: no payload");
  auto payload = decode_field(doc["payload"].get<std::string>());
  if (!payload) throw ParseError("DSSE envelope: payload is neither hex nor base64");
  e.payload = std::move(*payload);
  if (!doc.contains("payloadType") || !doc["payloadType"].is_string())
    throw ParseError("DSSE envelope: no payloadType");
  e.payload_type = doc["payloadType"].get<std::string>();
  if (!doc.contains("signatures") || !doc["signatures"].is_array()) throw ParseError("DSSE envelope: no signatures");
  for (const auto& s : doc["signatures"]) {
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string())
      throw ParseError("DSSE envelope: signature without sig");
    auto sig = decode_field(s["sig"].get<std::string>());
    if (!sig) continue;
    Signature out;
    if (s.contains("keyid") && s["keyid"].is_string()) out.keyid = s["keyid"].get<std::string>();
    out.sig = std::move(*sig);
    e.signatures.push_back(std::move(out));
  }
  return e;
}

bool verify_with_key(const Envelope& e, EVP_PKEY* key) {
  const Bytes message = pae(e.payload_type, e.payload);
  for (const auto& s : e.signatures)
    if (verify_ecdsa_sha256(key, message, s.sig)) return true;
  return false;
}

bool verify_with_embedded_certificates(const Envelope& e) {
  const Bytes message = pae(e.payload_type, e.payload);
  // Every certificate is a verifier for every signature, as upstream builds its verifier list.
  std::vector<ossl::X509Ptr> certs;
  for (const auto& s : e.signatures) {
    auto pem = base64_decode_ignoring_whitespace(s.keyid);
    if (!pem) continue;
    ossl::Bio bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    if (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(c);
  }
  ERR_clear_error();
  for (const auto& s : e.signatures)
    for (const auto& c : certs)
      if (verify_ecdsa_sha256(X509_get0_pubkey(c.get()), message, s.sig)) return true;
  return false;
}

std::string keyid_of(EVP_PKEY* key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) throw std::runtime_error("cannot encode public key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return hex_encode(crypto::digest(crypto::HashAlg::sha256, ByteView(reinterpret_cast<std::uint8_t*>(data),
                                                                      static_cast<std::size_t>(len))));
}

nlohmann::json sign(ByteView payload, std::string_view type, EVP_PKEY* key) {
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) throw std::invalid_argument("DSSE signing needs an EC key");
  const Bytes message = pae(type, payload);
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1)
    throw std::runtime_error("DSSE signing failed: " + ossl::last_error());
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1)
    throw std::runtime_error("DSSE signing failed: " + ossl::last_error());
  sig.resize(len);
  return {{"payload", base64_encode(payload)},
          {"payloadType", std::string(type)},
          {"signatures", nlohmann::json::array({{{"keyid", keyid_of(key)}, {"sig", base64_encode(sig)}}})}};
}

}  // namespace kl::policy::dsse
