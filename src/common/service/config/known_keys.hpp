// The keys and defaults of upstream's configuration templates (spec §7.2 / §7.3)
// as data: services read their fallbacks from here and warn about keys not listed.
#pragma once

#include <map>
#include <set>
#include <string>

namespace kl::config {

const std::map<std::string, std::string>& registrar_defaults();  // key -> default text
const std::map<std::string, std::string>& verifier_defaults();
const std::map<std::string, std::string>& revocations_defaults();

// The key names of a defaults table, for Config::unknown_keys().
std::set<std::string> key_names(const std::map<std::string, std::string>& defaults);

}  // namespace kl::config
