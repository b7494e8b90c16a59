#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "verifier/agents_handler.hpp"
#include "verifier/revocation.hpp"

using namespace kl::verifier;

TEST_CASE("revocation message: upstream key order, asctime, JSON strings") {
  kl::storage::VerifierAgent a;
  a.agent_id = "agent-1";
  a.ip = "127.0.0.1";
  a.port = 9002;
  a.tpm_policy = encode_json_string_column("{\"mask\": \"0x400\"}");
  a.meta_data = encode_json_string_column("{}");
  kl::Failure f(kl::Component::pcr_validation);
  f.add_event("invalid_pcr_10", nlohmann::json{{"got", "aa"}}, true);
  const std::string msg = revocation_msg(a, "revocation", &f.events()[0], 1717408800);
  CHECK(msg ==
        "{\"type\": \"revocation\", \"ip\": \"127.0.0.1\", \"agent_id\": \"agent-1\", \"port\": 9002, "
        "\"tpm_policy\": \"{\\\"mask\\\": \\\"0x400\\\"}\", \"meta_data\": \"{}\", \"event_time\": \"Mon Jun  3 10:00:00 2024\", "
        "\"event_id\": \"pcr_validation.invalid_pcr_10\", \"severity_label\": \"emergency\", \"context\": \"{\\\"got\\\": \\\"aa\\\"}\"}");
  const auto inner = nlohmann::json::parse(msg);
  CHECK(inner["agent_id"] == "agent-1");
  CHECK(revocation_msg(a, "comm_error", nullptr, 0).find("event_id") == std::string::npos);
}

TEST_CASE("revocation signature: RSA-PSS SHA-256 max salt, verifiable with the public key") {
  kl::ossl::Pkey key(EVP_RSA_gen(2048));
  kl::ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const std::string pem(data, static_cast<size_t>(BIO_get_mem_data(bio.get(), &data)));
  const std::string msg = "{\"type\": \"revocation\"}";
  const auto sig = kl::base64_decode(sign_revocation(msg, pem));
  REQUIRE(sig);
  kl::ossl::MdCtx md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestVerifyInit(md.get(), &pctx, EVP_sha256(), nullptr, key.get()) == 1);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO);
  CHECK(EVP_DigestVerify(md.get(), sig->data(), sig->size(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1);
  CHECK(EVP_DigestVerify(md.get(), sig->data(), sig->size(), reinterpret_cast<const unsigned char*>("x"), 1) != 1);
  CHECK(sign_revocation(msg, "").empty());
  CHECK_THROWS(sign_revocation(msg, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"));
  const auto body = nlohmann::json::parse(revocation_body(msg, "c2ln"));
  CHECK(body["msg"] == msg);
  CHECK(body["signature"] == "c2ln");
}
