// SEV-SNP report verification throughput on one core: the genuine Milan report (testdata/snp/milan-virtee) verified
// against its VCEK and the pinned AMD Milan ARK/ASK, with the chain cached (ChainCache) as the registrar keeps it.
// Each iteration is the full verify_report(): cache lookup, validity window, extension match, ECDSA P-384.
// Prints reports/s; the target is >= 1,000/s.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/verify.hpp"
#include "registrar/surrogate_check.hpp"
#include "support/snp_chain.hpp"

using namespace kl;
using namespace kl::snp;
namespace fs = std::filesystem;

namespace {

Bytes read(const std::string& rel) {
  std::ifstream in(std::string(KL_TESTDATA_DIR) + "/" + rel, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "missing test vector %s\n", rel.c_str());
    std::exit(2);
  }
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Rate {
  double wall = 0, cpu = 0;  // per wall-clock second, per CPU second of this thread
};

// The machine may be shared: the per-CPU-second figure is what one dedicated core would do.
template <class F>
Rate per_second(F&& f, double seconds) {
  using C = std::chrono::steady_clock;
  auto start = C::now();
  double cpu0 = thread_cpu_seconds();
  std::size_t n = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 50; ++i) f();
    n += 50;
    elapsed = std::chrono::duration<double>(C::now() - start).count();
  } while (elapsed < seconds);
  double cpu = thread_cpu_seconds() - cpu0;
  return {static_cast<double>(n) / elapsed, cpu > 0 ? static_cast<double>(n) / cpu : 0};
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  fs::path dir = fs::temp_directory_path() / ("kl-bench-snp-" + std::to_string(std::random_device{}()));
  write(dir / "Milan" / "ark.pem", read("snp/amd-roots/milan_vcek_ark.pem"));
  write(dir / "Milan" / "ask.pem", read("snp/amd-roots/milan_vcek_ask.pem"));
  StoreCertSource::Options so;
  so.store_dir = dir;
  StoreCertSource source(so);

  Bytes raw = read("snp/milan-virtee/report_milan.bin");
  VerifyOptions opts;
  opts.certs = &source;
  opts.vek = read("snp/milan-virtee/vcek_milan.der");
  ChainCache cache;
  opts.cache = &cache;

  // Sanity: the measured path must be the passing one.
  auto first = verify_report(parse_report(raw), raw, opts);
  if (!first.ok()) {
    std::fprintf(stderr, "verification failed: %s\n", first.message().c_str());
    return 1;
  }
  std::size_t failures = 0;
  Rate cached = per_second(
      [&] {
        SnpReport r = parse_report(raw);
        if (!verify_report(r, raw, opts).ok()) ++failures;
      },
      seconds);
  VerifyOptions uncached = opts;
  uncached.cache = nullptr;
  Rate full = per_second(
      [&] {
        SnpReport r = parse_report(raw);
        if (!verify_report(r, raw, uncached).ok()) ++failures;
      },
      seconds / 2);

  // What the registrar does per SNP surrogate registration (SurrogateVerifier::check_snp): detect, parse, VCEK from
  // the store directory (file read + chain cache hit), ECDSA, EK binding (SHA-512 of ek_tpm), launch policy.
  fs::path store = dir / "synthetic";
  snptest::write_store(snptest::test_chain(), store);
  snptest::LeafSpec ls;
  ls.hw_id = snptest::chip_id_of(7);
  snptest::TestLeaf vcek = snptest::make_leaf(snptest::test_chain(), ls);
  write(store / vcek_store_path(LeafQuery{Product::milan, VekKind::vcek, ls.hw_id, ls.tcb}), vcek.der);
  registrar::SurrogateSettings ss;
  ss.cert_store = store;
  ss.extra_ark_pins = {snptest::test_chain().ark_sha256};
  registrar::SurrogateVerifier checker(ss);
  Bytes ek(316, 0);
  {
    // Any well-formed RSA-2048 EK TPM2B_PUBLIC: the sample agent's, from the shared Keylime DB vector.
    Bytes j = read("keylime-db/registrar-get-agent-v2.1.json");
    auto doc = nlohmann::json::parse(j.begin(), j.end());
    ek = *base64_decode(doc["results"]["ek_tpm"].get<std::string>());
  }
  snptest::ReportSpec rs;
  rs.chip_id = ls.hw_id;
  const Bytes surrogate = snptest::surrogate_report(vcek.key.get(), ek, rs);
  if (auto o = checker.check_snp(surrogate, ek); !o.ok()) {
    std::fprintf(stderr, "registrar surrogate check failed: %s\n", o.reason.c_str());
    return 1;
  }
  Rate reg = per_second(
      [&] {
        if (!checker.check_snp(surrogate, ek).ok()) ++failures;
      },
      seconds);

  std::error_code ec;
  fs::remove_all(dir, ec);
  std::printf("bench_snp: parse + verify_report, cached chain:   %.0f reports/s per CPU-second of one core "
              "(%.0f/s wall clock on this machine); target >= 1000: %s\n",
              cached.cpu, cached.wall, cached.cpu >= 1000 ? "met" : "NOT met");
  std::printf("bench_snp: parse + verify_report, chain each time: %.0f reports/s per CPU-second (%.0f/s wall)\n",
              full.cpu, full.wall);
  std::printf("bench_snp: registrar check_snp (store lookup, cached chain, binding, policy): %.0f reports/s per "
              "CPU-second (%.0f/s wall)\n",
              reg.cpu, reg.wall);
  if (failures) {
    std::fprintf(stderr, "%zu verifications failed during the run\n", failures);
    return 1;
  }
  return 0;
}
