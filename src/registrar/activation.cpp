#include "registrar/activation.hpp"

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"

namespace kl::registrar {

std::string expected_auth_tag(std::string_view stored_key, std::string_view agent_id) {
  return hex_encode(crypto::hmac(crypto::HashAlg::sha384, as_bytes(stored_key), as_bytes(agent_id)));
}

bool auth_tag_matches(std::string_view stored_key, std::string_view agent_id, std::string_view auth_tag) {
  const std::string expected = expected_auth_tag(stored_key, agent_id);
  return constant_time_equal(as_bytes(expected), as_bytes(auth_tag));
}

}  // namespace kl::registrar
