#include "agent/agent_server.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/quote/pcr_blob.hpp"
#include "common/attest/quote/quote_string.hpp"
#include "common/attest/tpm/public_area.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "common/service/tls/cert_builder.hpp"

namespace kl::testing {
namespace {

using kl::http::json_envelope;
using kl::http::Request;
using kl::http::Response;

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = kl::hex_decode(std::string(s.substr(i + 1, 2)));
      if (hex && hex->size() == 1) {
        out.push_back(static_cast<char>((*hex)[0]));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= q.size()) {
    auto amp = q.find('&', pos);
    if (amp == std::string::npos) amp = q.size();
    std::string part = q.substr(pos, amp - pos);
    if (!part.empty()) {
      auto eq = part.find('=');
      if (eq == std::string::npos) {
        out[percent_decode(part)] = "";
      } else {
        out[percent_decode(part.substr(0, eq))] = percent_decode(part.substr(eq + 1));
      }
    }
    pos = amp + 1;
  }
  return out;
}

bool all_alnum(const std::string& s) {
  for (unsigned char c : s)
    if (!std::isalnum(c)) return false;
  return true;
}

Response error(int code, const std::string& message) { return json_envelope(code, nlohmann::json::object(), message); }

std::string pubkey_pem(EVP_PKEY* key) {
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) throw std::runtime_error("cannot write public key PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::optional<kl::Bytes> oaep_decrypt(EVP_PKEY* key, kl::ByteView ct) {
  kl::ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1) {
    kl::ossl::last_error();
    return std::nullopt;
  }
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ct.data(), ct.size()) != 1) {
    kl::ossl::last_error();
    return std::nullopt;
  }
  kl::Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ct.data(), ct.size()) != 1) {
    kl::ossl::last_error();
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

kl::ossl::Pkey key_from_tpm2b(kl::ByteView tpm2b) { return kl::tpm::public_key(kl::tpm::parse_tpm2b_public(tpm2b)); }

// Splits "/v2.1/quotes/integrity" into ("2.1", "/quotes/integrity"); nullopt when there is no /v prefix.
std::optional<std::pair<std::string, std::string>> split_version(const std::string& path) {
  if (path.rfind("/v", 0) != 0) return std::nullopt;
  auto slash = path.find('/', 2);
  if (slash == std::string::npos) return std::make_pair(path.substr(2), std::string("/"));
  std::string rest = path.substr(slash);
  while (rest.size() > 1 && rest.back() == '/') rest.pop_back();
  return std::make_pair(path.substr(2, slash - 2), rest);
}

bool version_at_least(const std::string& v, int major, int minor) {
  int a = 0, b = 0;
  if (std::sscanf(v.c_str(), "%d.%d", &a, &b) < 1) return false;
  return a > major || (a == major && b >= minor);
}

}  // namespace

std::string encrypt_for_agent(const std::string& pem, kl::ByteView plaintext) {
  kl::ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  kl::ossl::Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::runtime_error("encrypt_for_agent: not a public key PEM");
  kl::ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1)
    throw std::runtime_error("encrypt_for_agent: " + kl::ossl::last_error());
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()) != 1)
    throw std::runtime_error("encrypt_for_agent: " + kl::ossl::last_error());
  kl::Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()) != 1)
    throw std::runtime_error("encrypt_for_agent: " + kl::ossl::last_error());
  out.resize(len);
  return kl::base64_encode(out);
}

// ---------------------------------------------------------------- AgentApi

AgentApi::AgentApi(Config cfg) : cfg_(std::move(cfg)) {
  if (!cfg_.payload_key || !*cfg_.payload_key) throw std::invalid_argument("AgentApi: payload key required");
  pubkey_pem_ = pubkey_pem(cfg_.payload_key->get());
  auto ak = key_from_tpm2b(cfg_.ak_tpm2b_public);
  auto ek = key_from_tpm2b(cfg_.ek_tpm2b_public);
  const bool ak_ec = EVP_PKEY_get_base_id(ak.get()) == EVP_PKEY_EC;
  sign_alg_ = ak_ec ? "ecdsa" : "rsassa";
  enc_base_ = EVP_PKEY_get_base_id(ek.get()) == EVP_PKEY_EC ? "ecc" : "rsa";
  enc_bits_ = static_cast<unsigned>(EVP_PKEY_get_bits(ek.get()));
  ak_bits_ = static_cast<unsigned>(EVP_PKEY_get_bits(ak.get()));
}

AgentHooks AgentApi::hooks() const {
  std::lock_guard<std::mutex> lk(mu_);
  return hooks_;
}
void AgentApi::set_hooks(AgentHooks h) {
  std::lock_guard<std::mutex> lk(mu_);
  hooks_ = std::move(h);
}
void AgentApi::set_ima_log(std::string log) {
  std::lock_guard<std::mutex> lk(mu_);
  ima_log_ = std::move(log);
}
void AgentApi::append_ima_log(const std::string& line) {
  std::lock_guard<std::mutex> lk(mu_);
  ima_log_ += line;
  ima_log_ += '\n';
}
std::string AgentApi::ima_log() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ima_log_;
}
void AgentApi::set_mb_log(kl::Bytes log) {
  std::lock_guard<std::mutex> lk(mu_);
  mb_log_ = std::move(log);
}
void AgentApi::set_boottime(long long b) {
  std::lock_guard<std::mutex> lk(mu_);
  boottime_ = b;
}
std::vector<long long> AgentApi::ima_entries_requested() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ima_requests_;
}
std::optional<kl::Bytes> AgentApi::v_key() const {
  std::lock_guard<std::mutex> lk(mu_);
  return v_;
}
std::optional<kl::Bytes> AgentApi::u_key() const {
  std::lock_guard<std::mutex> lk(mu_);
  return u_;
}
std::vector<nlohmann::json> AgentApi::revocations() const {
  std::lock_guard<std::mutex> lk(mu_);
  return revocations_;
}

nlohmann::json AgentApi::quote_results(const std::string& nonce, std::uint32_t mask, const std::string& ver) {
  const AgentHooks h = hooks();
  std::vector<unsigned> pcrs;
  for (unsigned i = 0; i < 24; ++i)
    if (mask & (1u << i)) pcrs.push_back(i);
  pcrs.push_back(16);   // always bound to the payload key, as rust-keylime does
  if (cfg_.before_quote) cfg_.before_quote();
  const std::string quoted_nonce = h.quote_nonce.value_or(nonce);
  QuoteEvidence ev = cfg_.quote(kl::as_bytes(quoted_nonce), pcrs);
  if (h.swap_ak) {
    // The "swapped AK": a key of the AK's type the registrar never saw, made on first use (a fleet has
    // thousands of agents that never need one).
    std::lock_guard<std::mutex> lk(mu_);
    if (!swap_key_) {
      swap_key_.reset(sign_alg_ == "ecdsa" ? EVP_EC_gen("P-256") : EVP_RSA_gen(ak_bits_));
      if (!swap_key_) throw std::runtime_error("AgentApi: cannot generate the swap key: " + kl::ossl::last_error());
    }
    ev.signature = sign_as_tpm(swap_key_.get(), ev.attest);
  }
  if (h.tamper_quote && !ev.attest.empty()) ev.attest.back() ^= 0x01;   // inside pcrDigest: signature breaks
  nlohmann::json r;
  r["quote"] = kl::quote::make_quote_string({ev.attest, ev.signature, ev.pcr_blob});
  r["hash_alg"] = "sha256";
  r["enc_alg"] = version_at_least(ver, 2, 5) ? enc_base_ + std::to_string(enc_bits_) : enc_base_;
  r["sign_alg"] = sign_alg_;
  quotes_served_.fetch_add(1);
  return r;
}

Response AgentApi::integrity(const Request& req, const std::string& ver) {
  auto q = parse_query(req.query);
  const std::string nonce = q.count("nonce") ? q["nonce"] : "";
  const std::string mask_s = q.count("mask") ? q["mask"] : "";
  if (!all_alnum(nonce)) return error(400, "nonce should be strictly alphanumeric: " + nonce);
  if (!all_alnum(mask_s)) return error(400, "mask should be strictly alphanumeric: " + mask_s);
  std::string hex = mask_s.rfind("0x", 0) == 0 ? mask_s.substr(2) : mask_s;
  std::uint32_t mask = 0;
  {
    bool ok = !hex.empty() && hex.size() <= 8;
    for (char c : hex) ok = ok && std::isxdigit(static_cast<unsigned char>(c));
    if (!ok) return error(400, "mask should be a hex encoded 32-bit integer: " + mask_s);
    mask = static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16));
  }
  if (nonce.size() > 64) return error(400, "Nonce is too long (max size: 64): " + std::to_string(nonce.size()));
  const std::string partial = q.count("partial") ? q["partial"] : "";
  if (partial != "0" && partial != "1") return error(400, "uri must contain key 'partial' and value '0' or '1'");
  std::uint64_t nth = 0;
  long long requested = -1;
  if (q.count("ima_ml_entry")) {
    try {
      nth = std::stoull(q["ima_ml_entry"]);
      requested = static_cast<long long>(nth);
    } catch (...) {
      nth = 0;
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    ima_requests_.push_back(requested);
  }
  if (int st = hooks().fail_quotes_with; st != 0) return error(st, "Unable to retrieve quote");
  nlohmann::json r;
  try {
    r = quote_results(nonce, mask, ver);
  } catch (const std::exception&) {
    return error(500, "Unable to retrieve quote");
  }
  if (partial == "0") r["pubkey"] = pubkey_pem_;
  std::string log;
  {
    std::lock_guard<std::mutex> lk(mu_);
    log = ima_log_;
    r["boottime"] = boottime_;
    if (!mb_log_.empty()) r["mb_measurement_list"] = kl::base64_encode(mb_log_);
  }
  if (!log.empty()) {
    // Entries from nth on; an index past the end restarts from 0, as the agent does after a reboot.
    std::vector<std::size_t> starts;   // offset of each line
    for (std::size_t pos = 0; pos < log.size();) {
      starts.push_back(pos);
      auto nl = log.find('\n', pos);
      pos = nl == std::string::npos ? log.size() : nl + 1;
    }
    if (nth > starts.size()) nth = 0;
    r["ima_measurement_list"] = nth == starts.size() ? std::string() : log.substr(starts[nth]);
    r["ima_measurement_list_entry"] = nth;
  }
  return json_envelope(200, r, "Success");
}

Response AgentApi::identity(const Request& req, const std::string& ver) {
  auto q = parse_query(req.query);
  const std::string nonce = q.count("nonce") ? q["nonce"] : "";
  if (!all_alnum(nonce)) return error(400, "Parameters should be strictly alphanumeric: " + nonce);
  if (nonce.size() > 64) return error(400, "Nonce is too long (max size 64): " + nonce);
  nlohmann::json r;
  try {
    r = quote_results(nonce, 0, ver);
  } catch (const std::exception&) {
    return error(500, "Unable to retrieve quote");
  }
  r["pubkey"] = pubkey_pem_;
  return json_envelope(200, r, "Success");
}

Response AgentApi::handle(const Request& req) {
  if (cfg_.require_client_cert && (!req.peer || !req.peer->verified))
    return error(403, "client certificate required");
  std::vector<std::string> versions = cfg_.api_versions;
  if (auto h = hooks(); h.api_versions) versions = *h.api_versions;
  std::string path = req.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/version") {
    if (req.method != "GET") return error(405, "Method is not supported");
    return json_envelope(200, {{"supported_version", versions.empty() ? "" : versions.back()},
                               {"supported_versions", versions}},
                         "Success");
  }
  auto split = split_version(path);
  if (!split) return error(404, "Not Found");
  const auto& [ver, rest] = *split;
  if (std::find(versions.begin(), versions.end(), ver) == versions.end())
    return error(400, "API version not supported: " + ver);

  if (rest == "/quotes/integrity" && req.method == "GET") return integrity(req, ver);
  if (rest == "/quotes/identity" && req.method == "GET") return identity(req, ver);
  if (rest == "/agent/info" && req.method == "GET" && version_at_least(ver, 2, 2)) {
    return json_envelope(200,
                         {{"agent_uuid", cfg_.uuid},
                          {"tpm_hash_alg", "sha256"},
                          {"tpm_enc_alg", enc_base_},
                          {"tpm_sign_alg", sign_alg_},
                          {"ek_handle", 0x81000000u}},
                         "Success");
  }
  if ((rest == "/keys/ukey" || rest == "/keys/vkey") && req.method == "POST") {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("encrypted_key") || !body["encrypted_key"].is_string())
      return error(400, "Malformed JSON request");
    auto ct = kl::base64_decode(body["encrypted_key"].get<std::string>());
    if (!ct) return error(400, "encrypted_key is not valid base64");
    auto pt = oaep_decrypt(cfg_.payload_key->get(), *ct);
    if (!pt) return error(400, "Unable to decrypt key");
    std::lock_guard<std::mutex> lk(mu_);
    (rest == "/keys/ukey" ? u_ : v_) = std::move(*pt);
    return json_envelope(200, nlohmann::json::object(), "Success");
  }
  if (rest == "/keys/verify" && req.method == "GET") {
    auto q = parse_query(req.query);
    if (!q.count("challenge") || q["challenge"].empty()) return error(400, "No challenge provided.");
    const std::string ch = q["challenge"];
    if (!all_alnum(ch)) return error(400, "Parameters should be strictly alphanumeric: " + ch);
    std::optional<kl::Bytes> u, v;
    {
      std::lock_guard<std::mutex> lk(mu_);
      u = u_;
      v = v_;
    }
    if (!u || !v || u->size() != v->size()) return error(400, "Bootstrap key not yet available.");
    kl::Bytes k(u->size());
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = (*u)[i] ^ (*v)[i];
    const auto mac = kl::crypto::hmac(kl::crypto::HashAlg::sha384, k, kl::as_bytes(ch));
    return json_envelope(200, {{"hmac", kl::hex_encode(mac)}}, "Success");
  }
  if (rest == "/notifications/revocation" && req.method == "POST") {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) return error(400, "Malformed JSON request");
    std::lock_guard<std::mutex> lk(mu_);
    revocations_.push_back(std::move(body));
    return json_envelope(200, nlohmann::json::object(), "Success");
  }
  return error(400, "URI not supported");
}

// ---------------------------------------------------------------- AgentServer

struct AgentServer::Running {
  std::unique_ptr<kl::http::Server> server;
};

namespace {
std::shared_ptr<kl::ossl::Pkey> make_payload_key() {
  auto k = std::make_shared<kl::ossl::Pkey>(EVP_RSA_gen(2048));
  if (!*k) throw std::runtime_error("cannot generate the payload key: " + kl::ossl::last_error());
  return k;
}

kl::Bytes sha256_of(const std::string& s) { return kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(s)); }
}  // namespace

AgentServer::AgentServer(AgentServerOptions opts, TpmAgent& tpm) : opts_(std::move(opts)), tpm_(&tpm) {
  payload_key_ = make_payload_key();
  ak_pub_ = tpm.ak_tpm2b_public();
  ek_pub_ = tpm.ek_tpm2b_public();
  AgentApi::Config cfg;
  cfg.uuid = opts_.uuid;
  cfg.ak_tpm2b_public = ak_pub_;
  cfg.ek_tpm2b_public = ek_pub_;
  cfg.payload_key = payload_key_;
  cfg.api_versions = opts_.api_versions;
  cfg.require_client_cert = opts_.mtls && !opts_.trusted_client_ca_file.empty();
  cfg.quote = [this](kl::ByteView nonce, const std::vector<unsigned>& pcrs) {
    std::lock_guard<std::mutex> lk(tpm_mu_);
    auto q = tpm_->quote(nonce, kl::crypto::HashAlg::sha256, pcrs);
    kl::quote::PcrValues values;
    for (auto& [i, v] : q.pcr_values) values[i] = v;
    return QuoteEvidence{std::move(q.attest), std::move(q.signature),
                         kl::quote::make_pcr_blob(TPM2_ALG_SHA256, values)};
  };
  api_ = std::make_unique<AgentApi>(std::move(cfg));
  tpm.pcr_extend(16, kl::crypto::HashAlg::sha256, sha256_of(api_->payload_pubkey_pem()));
  init_tls();
}

AgentServer::AgentServer(AgentServerOptions opts, SoftwareAgent& agent) : opts_(std::move(opts)) {
  payload_key_ = make_payload_key();
  ak_pub_ = agent.ak_tpm2b_public();
  ek_pub_ = agent.ek_tpm2b_public();
  soft_tpm_ = std::make_unique<SoftwareTpm>(agent.ak_key(), ak_pub_);
  AgentApi::Config cfg;
  cfg.uuid = opts_.uuid;
  cfg.ak_tpm2b_public = ak_pub_;
  cfg.ek_tpm2b_public = ek_pub_;
  cfg.payload_key = payload_key_;
  cfg.api_versions = opts_.api_versions;
  cfg.require_client_cert = opts_.mtls && !opts_.trusted_client_ca_file.empty();
  SoftwareTpm* st = soft_tpm_.get();
  cfg.quote = [st](kl::ByteView nonce, const std::vector<unsigned>& pcrs) { return st->quote(nonce, pcrs); };
  // Reset + extend PCR 16 before every quote, as rust-keylime does.
  cfg.before_quote = [st, binding = sha256_of(pubkey_pem(payload_key_->get()))] {
    st->pcr_reset(16);
    st->pcr_extend(16, binding);
  };
  api_ = std::make_unique<AgentApi>(std::move(cfg));
  init_tls();
}

void AgentServer::init_tls() {
  if (!opts_.mtls) return;
  kl::ossl::Pkey key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("cannot generate the agent TLS key: " + kl::ossl::last_error());
  kl::tls::CertSpec spec;
  spec.common_name = opts_.uuid.empty() ? "keylime-agent" : opts_.uuid;
  spec.sans = {opts_.address};
  auto cert = kl::tls::issue_certificate(spec, key.get(), nullptr, nullptr);
  cert_pem_ = kl::tls::to_pem(cert.get());
  kl::tls::write_file(dir_.path() / "server-cert.crt", cert_pem_, 0644, false);
  kl::tls::write_file(dir_.path() / "server-private.pem", kl::tls::to_pem(key.get()), 0600, false);
}

AgentServer::~AgentServer() { stop(); }

void AgentServer::start() {
  std::lock_guard<std::mutex> lk(server_mu_);
  if (server_) return;
  kl::http::ServerOptions so;
  kl::http::ListenerConfig l;
  l.address = opts_.address;
  l.port = bound_port_ ? bound_port_ : opts_.port;
  if (opts_.mtls) {
    kl::http::TlsServerConfig t;
    t.cert_file = (dir_.path() / "server-cert.crt").string();
    t.key_file = (dir_.path() / "server-private.pem").string();
    if (!opts_.trusted_client_ca_file.empty()) t.trusted_client_ca_files = {opts_.trusted_client_ca_file};
    l.tls = t;
  }
  so.listeners.push_back(l);
  so.threads = 1;
  AgentApi* api = api_.get();
  auto r = std::make_unique<Running>();
  r->server = std::make_unique<kl::http::Server>(so, [api](const Request& req) { return api->handle(req); });
  r->server->start();
  bound_port_ = r->server->bound_ports().at(0);
  server_ = std::move(r);
}

void AgentServer::stop() {
  std::unique_ptr<Running> r;
  {
    std::lock_guard<std::mutex> lk(server_mu_);
    r = std::move(server_);
  }
  if (r) r->server->stop();
}

bool AgentServer::running() const {
  std::lock_guard<std::mutex> lk(server_mu_);
  return server_ != nullptr;
}

std::uint16_t AgentServer::port() const {
  std::lock_guard<std::mutex> lk(server_mu_);
  return bound_port_ ? bound_port_ : opts_.port;
}

void AgentServer::measure(const ImaLine& line) {
  // Log first, then extend, as the kernel does: a quote taken in between lags the log, which the verifier
  // accepts (it matches a prefix of the log).
  api_->append_ima_log(line.text);
  pcr_extend(10, line.sha256_extend);
}

void AgentServer::measure_boot(const kl::Bytes& event_log) {
  for (const auto& [pcr, digest] : boot_log_extensions(event_log)) pcr_extend(pcr, digest);
  api_->set_mb_log(event_log);
}

void AgentServer::pcr_extend(unsigned pcr, kl::ByteView d) {
  if (soft_tpm_) {
    soft_tpm_->pcr_extend(pcr, d);
    return;
  }
  std::lock_guard<std::mutex> lk(tpm_mu_);
  tpm_->pcr_extend(pcr, kl::crypto::HashAlg::sha256, d);
}

}  // namespace kl::testing
