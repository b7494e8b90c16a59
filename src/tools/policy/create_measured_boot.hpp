// `keylime-policy create measured-boot`: a reference state for the "example" measured-boot policy
// from a binary UEFI event log (upstream create_mb_policy), written as upstream's json.dump does.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/policy/arg_parser.hpp"

namespace kl::tools {

ArgParser create_measured_boot_parser();
int run_create_measured_boot(const std::vector<std::string>& args);

// The reference state with upstream's key order (has_secureboot, scrtm_and_bios, pk, kek, db, dbx,
// vendor_db, mokdig, mokxdig, kernels; kernel entry and signature fields in upstream's order too).
nlohmann::ordered_json refstate_in_upstream_order(const nlohmann::json& refstate);

}  // namespace kl::tools
