// Readers for the shared SNP test vectors; the synthetic AMD chain itself lives in tests/support/snp_chain.hpp
// (shared with the registrar tests and the test agent).
#pragma once
#include <string>

#include "common/attest/crypto/bytes.hpp"
#include "support/snp_chain.hpp"

namespace snptest {

kl::Bytes read_testdata(const std::string& rel);  // KL_TESTDATA_DIR "/" rel; FAILs the test if missing
kl::Bytes sample_ek_tpm();  // ek_tpm of keylime-db/registrar-get-agent-v2.1.json (decoded TPM2B_PUBLIC)

}  // namespace snptest
