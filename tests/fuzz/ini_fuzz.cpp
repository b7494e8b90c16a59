// Keylime .conf files (RawConfigParser dialect).
#include <string>

#include "common/service/config/ini_parser.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(klfuzz::text(data, size));
  klfuzz::parses([&] { (void)kl::config::parse_ini(text, "fuzz.conf"); });
  return 0;
}
