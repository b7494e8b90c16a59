#include "common/attest/crypto/random.hpp"

#include <climits>
#include <stdexcept>

#include <openssl/rand.h>

#include "common/attest/crypto/ossl.hpp"

namespace kl::crypto {

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  if (n == 0) return out;
  if (n > static_cast<std::size_t>(INT_MAX)) throw std::invalid_argument("random_bytes: request too large");
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed: " + ossl::last_error());
  return out;
}

}  // namespace kl::crypto
