#include "common/attest/crypto/ossl.hpp"

#include <openssl/err.h>

namespace kl::ossl {

std::string last_error() {
  unsigned long code = ERR_get_error();
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  }
  ERR_clear_error();
  return text.empty() ? "unknown OpenSSL error" : text;
}

}  // namespace kl::ossl
