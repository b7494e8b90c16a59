// `keylime-policy sign runtime`: wraps a validated runtime policy in a DSSE envelope
// (payloadType application/vnd.keylime+json) signed with ECDSA-SHA256, as upstream's
// sign_runtime_policy: backend "ecdsa" (keyid = SHA-256 of the PEM public key) or "x509" (keyid =
// base64 of a self-signed PEM certificate, also written to --cert-outfile). Without --keyfile a
// P-256 key is generated and written (mode 0600) to --keypath or ./keylime-ecdsa-key.pem.
#pragma once
#include <string>
#include <vector>

#include "tools/policy/arg_parser.hpp"

namespace kl::tools {

inline constexpr const char* kDefaultEcKeyFile = "keylime-ecdsa-key.pem";

ArgParser sign_runtime_parser();
int run_sign_runtime(const std::vector<std::string>& args);

}  // namespace kl::tools
