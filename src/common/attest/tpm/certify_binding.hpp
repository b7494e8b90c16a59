// AK <-> IAK binding at registration (wire-contract 2.3 step 4): the agent certifies its AK with
// TPM2_Certify signed by the IAK; this proves both keys live in the same TPM.
#pragma once
#include <string_view>

#include <openssl/evp.h>

#include "common/attest/crypto/bytes.hpp"

namespace kl::tpm {

enum class BindingError {
  none,
  malformed,                 // iak_attest or iak_sign cannot be parsed
  wrong_magic_or_type,       // not TPM_GENERATED_VALUE / TPM_ST_ATTEST_CERTIFY
  qualifying_data_mismatch,  // extraData is neither SHA-256(agent_id) nor agent_id
  name_mismatch,             // certified object is not the AK
  bad_signature              // IAK signature does not verify (or scheme does not fit the key)
};

// iak_attest = TPMS_ATTEST from TPM2_Certify(AK) signed by the IAK; extraData must equal SHA-256(agent_id)
// (API 2.6 form) or the raw agent_id bytes (older form); certified name must equal ak_name.
// Checks run in that order (magic/type, qualifying data, name, signature), as Keylime does.
// RSA IAK: RSASSA or RSAPSS; EC IAK: ECDSA.
BindingError verify_ak_iak_binding(ByteView iak_attest, ByteView iak_sign, EVP_PKEY* iak_public,
                                   ByteView ak_name, std::string_view agent_id);

std::string_view binding_error_text(BindingError);  // short English reason, for logs

}  // namespace kl::tpm
