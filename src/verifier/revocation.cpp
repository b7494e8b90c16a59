#include "verifier/revocation.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "verifier/agents_handler.hpp"

namespace kl::verifier {

namespace {
std::string js(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace); }
}  // namespace

std::string asctime_utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday % 7], months[tm.tm_mon % 12], tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
  return buf;
}

std::string revocation_msg(const storage::VerifierAgent& a, std::string_view type, const Event* event, std::time_t now) {
  std::string m = "{\"type\": " + js(std::string(type));
  m += ", \"ip\": " + (a.ip ? js(*a.ip) : std::string("null"));
  m += ", \"agent_id\": " + js(a.agent_id);
  m += ", \"port\": " + (a.port ? std::to_string(*a.port) : std::string("null"));
  m += ", \"tpm_policy\": " + js(decode_json_string_column(a.tpm_policy));
  m += ", \"meta_data\": " + js(decode_json_string_column(a.meta_data));
  m += ", \"event_time\": " + js(asctime_utc(now));
  if (event) {
    m += ", \"event_id\": " + js(event->event_id);
    m += ", \"severity_label\": " + js(event->severity_label.name);
    m += ", \"context\": " + js(event->context_text());
  }
  m += "}";
  return m;
}

std::string sign_revocation(std::string_view msg, const std::string& key_pem) {
  if (key_pem.empty()) return "";
  ossl::Bio bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  ossl::Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("revocation_key is not a PEM private key");
  ossl::MdCtx md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(md.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) != 1)
    throw std::runtime_error("cannot sign with revocation_key: " + ossl::last_error());
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(msg.data());
  if (EVP_DigestSign(md.get(), nullptr, &len, data, msg.size()) != 1)
    throw std::runtime_error("cannot sign with revocation_key: " + ossl::last_error());
  Bytes sig(len);
  if (EVP_DigestSign(md.get(), sig.data(), &len, data, msg.size()) != 1)
    throw std::runtime_error("cannot sign with revocation_key: " + ossl::last_error());
  sig.resize(len);
  return base64_encode(sig);
}

std::string revocation_body(const std::string& msg, const std::string& signature) {
  return nlohmann::json{{"msg", msg}, {"signature", signature}}.dump();
}

}  // namespace kl::verifier
