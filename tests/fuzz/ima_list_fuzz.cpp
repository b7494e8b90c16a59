// IMA ascii_runtime_measurements: whole lists (line splitting) and each entry's template data.
#include "common/attest/ima/measurement_list.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view list = klfuzz::text(data, size);
  std::vector<kl::ima::ListLine> lines;
  klfuzz::parses([&] { lines = kl::ima::parse_list(list); });
  kl::Bytes scratch;
  for (const auto& l : lines) {
    if (l.entry) {
      klfuzz::parses([&] { kl::ima::template_data(*l.entry, scratch); });
      (void)kl::ima::python_bytes_repr(l.entry->template_hash);
    }
  }
  auto nl = list.find('\n');
  klfuzz::parses([&] { (void)kl::ima::parse_entry(list.substr(0, nl)); });
  return 0;
}
