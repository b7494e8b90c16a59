#include "common/attest/quote/clock_check.hpp"

#include <cstdint>

#include "common/attest/parse_error.hpp"

namespace kl::quote {

tpm::ClockInfo initial_clock_info() {
  tpm::ClockInfo c;
  c.safe = true;
  return c;
}

ClockCheck check_clock(const tpm::ClockInfo& previous, const tpm::ClockInfo& current) {
  ClockCheck r;
  if (current.reset_count < previous.reset_count) {
    r.error = "resetCount value decreased on TPM between two consecutive quotes";
    return r;
  }
  // restartCount only counts within one reset cycle: after a TPM Reset it legitimately starts again.
  if (current.reset_count == previous.reset_count && current.restart_count < previous.restart_count) {
    r.error = "restartCount value decreased on TPM between two consecutive quotes";
    return r;
  }
  if (!current.safe) {
    r.error = "clock safe flag is disabled";
    return r;
  }
  // safe == YES means the TPM never reported a larger Clock, reboot or not.
  if (current.clock <= previous.clock) {
    r.error = "clock timestamp did issued by TPM did not increase between two consecutive quotes";
    return r;
  }
  r.update = current;
  return r;
}

Failure clock_failure(std::string_view reason) {
  Failure f(Component::quote_validation);
  f.add_event("quote_validation",
              nlohmann::json{{"message", "Validation of clockinfo from quote using tpm2-tools"},
                             {"data", std::string(reason)}},
              false);
  return f;
}

nlohmann::json clock_info_to_json(const tpm::ClockInfo& c) {
  return nlohmann::json{{"clock", c.clock},
                        {"resetCount", c.reset_count},
                        {"restartCount", c.restart_count},
                        {"safe", c.safe ? 1 : 0}};
}

tpm::ClockInfo clock_info_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ParseError("tpm_clockinfo must be a JSON object");
  auto num = [&](const char* key, std::uint64_t max) -> std::uint64_t {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) throw ParseError(std::string("tpm_clockinfo: '") + key + "' missing or not an integer");
    if (it->is_number_unsigned()) {
      auto v = it->get<std::uint64_t>();
      if (v > max) throw ParseError(std::string("tpm_clockinfo: '") + key + "' out of range");
      return v;
    }
    auto v = it->get<std::int64_t>();
    if (v < 0) throw ParseError(std::string("tpm_clockinfo: '") + key + "' is negative");
    if (static_cast<std::uint64_t>(v) > max) throw ParseError(std::string("tpm_clockinfo: '") + key + "' out of range");
    return static_cast<std::uint64_t>(v);
  };
  tpm::ClockInfo c;
  c.clock = num("clock", UINT64_MAX);
  c.reset_count = static_cast<std::uint32_t>(num("resetCount", UINT32_MAX));
  c.restart_count = static_cast<std::uint32_t>(num("restartCount", UINT32_MAX));
  auto s = j.find("safe");
  if (s == j.end()) throw ParseError("tpm_clockinfo: 'safe' missing");
  if (s->is_boolean()) c.safe = s->get<bool>();
  else if (s->is_number_integer()) c.safe = s->get<std::int64_t>() == 1;
  else throw ParseError("tpm_clockinfo: 'safe' must be a boolean or an integer");
  return c;
}

}  // namespace kl::quote
