// Cryptographic randomness (OpenSSL's DRBG). Callers that need determinism in tests inject their own source.
#pragma once
#include <cstddef>

#include "common/attest/crypto/bytes.hpp"

namespace kl::crypto {

Bytes random_bytes(std::size_t n);  // RAND_bytes, throws std::runtime_error on failure

}  // namespace kl::crypto
