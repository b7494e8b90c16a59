#include "common/attest/tpm/certify_binding.hpp"

#include <algorithm>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/tpm/attest.hpp"
#include "common/attest/tpm/signature.hpp"

namespace kl::tpm {
namespace {

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

}  // namespace

BindingError verify_ak_iak_binding(ByteView iak_attest, ByteView iak_sign, EVP_PKEY* iak_public,
                                   ByteView ak_name, std::string_view agent_id) {
  // Magic and type first, from the raw header, so that a well-formed quote (or any other attestation
  // type) is reported as the wrong kind rather than as garbage.
  if (iak_attest.size() < 6) return BindingError::malformed;
  const std::uint32_t magic = (std::uint32_t{iak_attest[0]} << 24) | (std::uint32_t{iak_attest[1]} << 16) |
                              (std::uint32_t{iak_attest[2]} << 8) | iak_attest[3];
  const std::uint16_t type = static_cast<std::uint16_t>((iak_attest[4] << 8) | iak_attest[5]);
  if (magic != kTpmGeneratedValue || type != kStAttestCertify) return BindingError::wrong_magic_or_type;

  Attest attest;
  Signature sig;
  try {
    attest = parse_attest(iak_attest);
    sig = parse_signature(iak_sign);
  } catch (const ParseError&) {
    return BindingError::malformed;
  }

  // Both forms are public values, so an ordinary comparison is fine here.
  const Bytes hashed_id = crypto::digest(crypto::HashAlg::sha256, as_bytes(agent_id));
  if (!equal(attest.extra_data, hashed_id) && !equal(attest.extra_data, as_bytes(agent_id)))
    return BindingError::qualifying_data_mismatch;

  if (!equal(attest.certified_name, ak_name)) return BindingError::name_mismatch;

  if (!verify_signature(iak_public, sig, iak_attest)) return BindingError::bad_signature;
  return BindingError::none;
}

std::string_view binding_error_text(BindingError e) {
  switch (e) {
    case BindingError::none: return "AK is bound to the IAK";
    case BindingError::malformed: return "malformed IAK attestation structure or signature";
    case BindingError::wrong_magic_or_type: return "invalid magic or structure is not CERTIFY";
    case BindingError::qualifying_data_mismatch: return "qualifying data does not match agent ID";
    case BindingError::name_mismatch: return "name of AK does not match attest info";
    case BindingError::bad_signature: return "IAK signature over the AK certification does not verify";
  }
  return "unknown";
}

}  // namespace kl::tpm
