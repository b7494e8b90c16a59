#include "tools/policy/sign_runtime.hpp"

#include <openssl/ec.h>
#include <openssl/pem.h>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/ossl.hpp"
#include "common/attest/policy/dsse.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "common/service/tls/cert_builder.hpp"
#include "tools/policy/file_io.hpp"
#include "tools/policy/python_json.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using Kind = OptionSpec::Kind;

ossl::Pkey load_private_key(const std::string& pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return ossl::Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// "BEGIN EC PRIVATE KEY" (TraditionalOpenSSL), as upstream writes generated keys.
std::string traditional_pem(EVP_PKEY* key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("cannot encode the private key: " + ossl::last_error());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

ordered_json to_ordered(const json& j) { return ordered_json::parse(j.dump()); }

}  // namespace

ArgParser sign_runtime_parser() {
  ArgParser p("keylime-policy sign runtime", "Sign a runtime policy with DSSE.");
  p.add(option("-o", "--output", "output_file", Kind::value, "FILE",
         "where to write the signed policy (standard output by default)"));
  p.add(option("-r", "--runtime-policy", "policy", Kind::value, "FILE", "runtime policy to sign", true));
  p.add(option("-k", "--keyfile", "keyfile", Kind::value, "FILE", "EC private key (PEM) to sign with"));
  p.add(option("-p", "--keypath", "keypath", Kind::value, "FILE",
         "without --keyfile: where to save the generated key (default ./keylime-ecdsa-key.pem)"));
  p.add(option("-b", "--backend", "backend", Kind::value, "BACKEND", "signature keyid kind: ecdsa (key fingerprint) or x509 (embedded certificate)", false,
         {"ecdsa", "x509"}));
  p.add(option("-c", "--cert-outfile", "cert_outfile", Kind::value, "FILE",
         "with -b x509: where to write the generated certificate"));
  p.add(option("-v", "--verbose", "verbose", Kind::flag, "", "also log debug messages"));
  return p;
}

int run_sign_runtime(const std::vector<std::string>& raw_args) {
  // argparse lowercases the backend (type=str.lower) before checking the choices.
  std::vector<std::string> args = raw_args;
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "-b" || args[i] == "--backend")
      for (auto& c : args[i + 1]) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const ArgParser parser = sign_runtime_parser();
  const ParsedArgs a = parser.parse(args);
  if (auto rc = handle_help_or_error(parser, a)) return *rc;
  ToolLog log(a.flag("verbose"));

  const std::string backend = a.value("backend", "ecdsa");
  if (a.has("keyfile") && a.has("keypath")) {
    log.error("Only one of keyfile or keypath must be specified at once");
    return 1;
  }
  if (backend == "x509" && a.value("cert_outfile").empty()) {
    log.error("x509 backend and no certificate output file specified");
    log.error("Unable to obtain a valid signer from the input data");
    return 1;
  }

  // The policy first, so that a bad policy leaves no generated key behind.
  const std::string policy_path = a.value("policy");
  std::string err;
  auto text = read_file(policy_path, err);
  if (!text) {
    log.error("The runtime policy file specified (" + policy_path + ") does not seem to exist");
    return 1;
  }
  ordered_json policy;
  try {
    policy = ordered_json::parse(*text);
  } catch (const std::exception&) {
  }
  std::optional<std::string> invalid;
  if (policy.is_discarded() || policy.is_null())
    invalid = "not JSON";
  else
    invalid = kl::policy::schema_error(json::parse(*text));
  if (invalid) {
    log.error("Unable to validate the runtime policy '" + policy_path +
              "'; please make sure to provide a valid runtime policy");
    log.debug("validation error: " + *invalid);
    return 1;
  }

  ossl::Pkey key;
  if (a.has("keyfile")) {
    const std::string keyfile = a.value("keyfile");
    auto pem = read_file(keyfile, err);
    if (!pem) {
      log.error("The specified key '" + keyfile + "' does not exist");
      return 1;
    }
    key = load_private_key(*pem);
    if (!key) {
      log.error("Unable to load the private key '" + keyfile + "': " + ossl::last_error());
      return 1;
    }
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
      log.error("Only elliptic curve keys are supported");
      log.error("Unable to obtain a valid signer from the input data");
      return 1;
    }
  } else {
    const std::string keypath = a.value("keypath", kDefaultEcKeyFile);
    key.reset(EVP_EC_gen("P-256"));
    if (!key) {
      log.error("EC key generation failed: " + ossl::last_error());
      return 1;
    }
    if (!write_output(keypath, traditional_pem(key.get()), err, true)) {
      log.error("Unable to write the generated private key: " + err);
      return 1;
    }
    log.debug("Wrote the generated EC private key to " + keypath);
  }

  json envelope;
  try {
    const std::string payload = python_dumps(policy);
    envelope = kl::policy::dsse::sign(as_bytes(payload), kl::policy::dsse::kKeylimePayloadType, key.get());
    if (backend == "x509") {
      kl::tls::CertSpec spec;
      spec.common_name = "dsse_lib";
      spec.sans = {"dsse_lib"};
      spec.days = 30;
      auto cert = kl::tls::issue_certificate(spec, key.get(), nullptr, nullptr);
      const std::string cert_pem = kl::tls::to_pem(cert.get());
      if (!write_output(a.value("cert_outfile"), cert_pem, err)) {
        log.error("Unable to write the certificate: " + err);
        return 1;
      }
      envelope["signatures"][0]["keyid"] = base64_encode(as_bytes(cert_pem));
    }
  } catch (const std::exception& e) {
    log.error("Error while attempting to sign the runtime policy '" + policy_path + "': " + e.what());
    return 1;
  }

  const std::string out_path = a.value("output_file", "/dev/stdout");
  std::string signed_text = python_dumps(to_ordered(envelope));
  if (out_path == "/dev/stdout" || out_path == "-") signed_text += "\n";  // upstream print()s to stdout
  if (!write_output(out_path, signed_text, err)) {
    log.error("Unable to write signed policy to destination file '" + out_path + "': " + err);
    return 1;
  }
  return 0;
}

}  // namespace kl::tools
