// UEFI (TCG2 crypto-agile) event log: parse, decode every event's data, replay PCRs, locality.
#include "common/attest/mb/event_log.hpp"
#include "common/attest/mb/parsed.hpp"
#include "common/attest/mb/replay.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kl::mb::EventLog log;
  if (!klfuzz::parses([&] { log = kl::mb::parse_event_log(klfuzz::bytes(data, size)); })) return 0;
  for (const auto& ev : log.events) {
    klfuzz::parses([&] { (void)kl::mb::event_to_json(ev); });
  }
  klfuzz::parses([&] {
    auto banks = kl::mb::replay_pcrs(log);
    (void)kl::mb::to_parsed_json(log, banks).dump();
  });
  klfuzz::parses([&] { (void)kl::mb::startup_locality(log); });
  return 0;
}
