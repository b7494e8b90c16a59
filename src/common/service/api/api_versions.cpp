#include "common/service/api/api_versions.hpp"

namespace kl::api {

const std::vector<std::string>& supported_api_versions() {
  static const std::vector<std::string> v{"1.0", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "3.0"};
  return v;
}

const std::string& current_api_version() {
  static const std::string v = "2.6";
  return v;
}

}  // namespace kl::api
