// Measured boot: parse + replay (+ parsed JSON) + example-policy evaluation time per event log, one core.
// Usage: bench_mb [iterations=200]
// The target: a 60 KB log parsed, replayed and evaluated in <= 2 ms. The largest sample is 49 KB, so
// a 60 KB log is made from it by appending grub command events (PCR 8, accepted by the example policy).
// The reference state is parsed once up front (as the verifier keeps it); its parse time is printed apart.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/mb/boot_log.hpp"
#include "common/attest/mb/policy.hpp"
#include "common/attest/mb/refstate.hpp"

namespace {

kl::Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return kl::Bytes(s.begin(), s.end());
}

void append_ipl(kl::Bytes& log, const std::string& text) {
  auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) log.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  put32(8);
  put32(0xD);  // EV_IPL
  put32(1);
  log.push_back(0x0B), log.push_back(0);
  auto d = kl::crypto::digest(kl::crypto::HashAlg::sha256, kl::as_bytes(text));
  log.insert(log.end(), d.begin(), d.end());
  put32(static_cast<std::uint32_t>(text.size()));
  log.insert(log.end(), text.begin(), text.end());
}

struct Timing {
  double parse_replay_us, parsed_json_us, evaluate_us;
};

template <class F>
double median_us(int iterations, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < iterations; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const std::string dir = std::string(KL_TESTDATA_DIR) + "/keylime/mb/";
  const std::set<std::uint32_t> pcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14};

  kl::Bytes sb = read_file(dir + "binary_bios_measurements-secureboot");
  kl::Bytes big = sb;
  for (int i = 0; big.size() < 60 * 1024; ++i) append_ipl(big, "grub_cmd: set timeout=" + std::to_string(i));

  struct Case {
    std::string name;
    kl::Bytes log;
  };
  std::vector<Case> cases = {{"binary_bios_measurements-secureboot", sb},
                             {"binary_bios_measurements", read_file(dir + "binary_bios_measurements")},
                             {"secureboot + grub_cmd events (60 KB)", big}};
  std::cout << "iterations per figure: " << iterations << " (median)\n";
  for (const auto& c : cases) {
    auto parsed = kl::mb::parse_boot_log(c.log);
    kl::mb::RefstateOptions opt;
    opt.allow_no_secureboot = true;
    const std::string ref_text = kl::mb::create_refstate(parsed.data, opt).dump();
    // The verifier parses an agent's reference state once and keeps it.
    const auto ref = kl::mb::parse_refstate(ref_text);
    std::string verdict;
    {
      auto f = kl::mb::evaluate_boot_log("example", ref, parsed.data, pcrs);
      verdict = f.failed() ? "fail (" + f.events()[0].event_id + ")" : "pass";
    }
    double parse_replay = median_us(iterations, [&] {
      auto log = kl::mb::parse_event_log(c.log);
      auto banks = kl::mb::replay_pcrs(log);
      if (banks.empty()) std::abort();
    });
    double full = median_us(iterations, [&] {
      auto p = kl::mb::parse_boot_log(c.log);
      if (p.data.empty()) std::abort();
    });
    double ref_parse = median_us(iterations, [&] { (void)kl::mb::parse_refstate(ref_text); });
    double evaluate = median_us(iterations, [&] {
      auto f = kl::mb::evaluate_boot_log("example", ref, parsed.data, pcrs);
      (void)f;
    });
    std::cout << c.name << ": " << c.log.size() << " bytes, " << parsed.log.events.size() << " events\n"
              << "  parse + replay:                      " << parse_replay << " us\n"
              << "  parse + replay + parsed JSON:        " << full << " us\n"
              << "  example policy evaluation:           " << evaluate << " us (" << verdict << ")\n"
              << "  total (parse+replay+JSON+evaluate):  " << full + evaluate << " us\n"
              << "  (reference state JSON parse, " << ref_text.size() << " bytes, once per agent: " << ref_parse
              << " us)\n";
  }
  return 0;
}
