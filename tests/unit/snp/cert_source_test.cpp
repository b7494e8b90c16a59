// Certificate sources: KDS URL shapes, a KDS stand-in on 127.0.0.1 (kl::http::Server) reached through the injected
// GET function (here kl::http::Client), the on-disk cache, and bounded retries.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>

#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_source.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/ek_binding.hpp"
#include "common/attest/snp/verify.hpp"
#include "common/service/http/client.hpp"
#include "common/service/http/server.hpp"
#include "snp_fixture.hpp"

using namespace kl;
using namespace kl::snp;

TEST_CASE("KDS URLs and store paths", "[snp][kds]") {
  LeafQuery q;
  q.product = Product::milan;
  q.hw_id = Bytes{0xAB, 0x01};
  q.tcb = TcbParts{3, 0, 8, 115};
  CHECK(kds_vcek_url("https://kdsintf.amd.com", q) ==
        "https://kdsintf.amd.com/vcek/v1/Milan/ab01?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115");
  q.product = Product::turin;
  q.tcb = TcbParts{1, 2, 3, 9, 4, true};
  CHECK(kds_vcek_url("https://kdsintf.amd.com", q) ==
        "https://kdsintf.amd.com/vcek/v1/Turin/ab01?blSPL=01&teeSPL=02&snpSPL=03&ucodeSPL=09&fmcSPL=04");
  CHECK(vcek_store_path(q).string() == "vcek/Turin/ab01/bl01-tee02-snp03-uc09-fmc04.der");
  CHECK(kds_cert_chain_url("https://kdsintf.amd.com", Product::genoa, VekKind::vcek) ==
        "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain");
  CHECK(kds_cert_chain_url("https://kdsintf.amd.com", Product::milan, VekKind::vlek) ==
        "https://kdsintf.amd.com/vlek/v1/Milan/cert_chain");
  CHECK(kds_crl_url("https://kdsintf.amd.com", Product::milan, VekKind::vcek) ==
        "https://kdsintf.amd.com/vcek/v1/Milan/crl");
}

TEST_CASE("certificate table parsing", "[snp][certtable]") {
  CertTable t;
  t.vcek = Bytes{1, 2, 3};
  t.ark = Bytes{4, 5};
  Bytes b = build_cert_table(t);
  CertTable p = parse_cert_table(b);
  CHECK(p.vcek == t.vcek);
  CHECK(p.ark == t.ark);
  CHECK_FALSE(p.ask);
  CHECK_THROWS_WITH(parse_cert_table(ByteView(b).first(30)), Catch::Contains("out of bounds"));
  Bytes unterminated(24, 0);
  unterminated[0] = 1;   // some GUID
  unterminated[20] = 4;  // offset 0, length 4: in bounds, but no all-zero entry follows
  CHECK_THROWS_WITH(parse_cert_table(unterminated), Catch::Contains("no terminating entry"));
  Bytes oob = b;
  oob[20] = 0xFF;  // length of entry 0
  CHECK_THROWS_WITH(parse_cert_table(oob), Catch::Contains("out of bounds"));
  CHECK_THROWS_AS(parse_cert_table(Bytes(5, 0)), ParseError);
}

namespace {

// Serves the test chain like AMD's KDS: /vcek/v1/Milan/<hwid>?..., /vcek/v1/Milan/cert_chain, /vcek/v1/Milan/crl.
// The first `failures` requests answer 429 (KDS rate limiting).
struct KdsStandIn {
  std::map<std::string, std::string> bodies;  // path -> body
  std::atomic<int> requests{0};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::string> targets;
  std::unique_ptr<http::Server> server;
  std::uint16_t port = 0;

  KdsStandIn() {
    http::ServerOptions so;
    so.listeners.push_back(http::ListenerConfig{"127.0.0.1", 0, std::nullopt});
    server = std::make_unique<http::Server>(so, [this](const http::Request& req) {
      ++requests;
      {
        std::lock_guard lk(mu);
        targets.push_back(req.target);
      }
      http::Response r;
      if (failures > 0) {
        --failures;
        r.status = 429;
        return r;
      }
      auto it = bodies.find(req.path);
      if (it == bodies.end()) {
        r.status = 404;
        return r;
      }
      r.content_type = "application/octet-stream";
      r.body = it->second;
      return r;
    });
    server->start();
    port = server->bound_ports().at(0);
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port); }
  HttpGet getter() const {
    std::string b = base();
    std::uint16_t p = port;
    return [b, p](const std::string& url) -> std::optional<Bytes> {
      if (url.rfind(b, 0) != 0) return std::nullopt;
      http::Client c("127.0.0.1", p, http::ClientOptions{std::nullopt, std::chrono::milliseconds(5000)});
      auto resp = c.request("GET", url.substr(b.size()));
      if (resp.status != 200) return std::nullopt;
      return Bytes(resp.body.begin(), resp.body.end());
    };
  }
};

}  // namespace

TEST_CASE("KDS stand-in on 127.0.0.1: fetch / cache / retry", "[snp][kds]") {
  const auto& chain = snptest::test_chain();
  Bytes chip = snptest::chip_id_of(9);
  snptest::LeafSpec ls;
  ls.hw_id = chip;
  auto vcek = snptest::make_leaf(chain, ls);
  Bytes ek = snptest::sample_ek_tpm();
  snptest::ReportSpec rs;
  rs.chip_id = chip;
  rs.report_data = expected_report_data(ek);
  Bytes raw = snptest::build_report(rs);
  snptest::sign_report(raw, vcek.key.get());
  SnpReport report = parse_report(raw);

  KdsStandIn kds;
  kds.bodies["/vcek/v1/Milan/" + hex_encode(chip)] = as_string(vcek.der);
  kds.bodies["/vcek/v1/Milan/cert_chain"] = snptest::to_pem(chain.ask.get()) + snptest::to_pem(chain.ark.get());
  kds.bodies["/vcek/v1/Milan/crl"] = as_string(snptest::make_ark_crl(chain, {}));

  snptest::TempDir store, cache;
  // The offline store holds only the pinned ARK; ASK and VCEK come from "KDS".
  snptest::write_file(store.path / "Milan" / "ark.pem", as_bytes(snptest::to_pem(chain.ark.get())));
  auto opts = snptest::test_store_options(store.path);
  KdsOptions k;
  k.get = kds.getter();
  k.base_url = kds.base();
  k.cache_dir = cache.path;
  std::vector<std::chrono::milliseconds> sleeps;
  k.sleep = [&](std::chrono::milliseconds d) { sleeps.push_back(d); };
  k.initial_backoff = std::chrono::milliseconds(100);
  opts.kds = k;

  VerifyOptions vo;
  vo.product = Product::milan;
  vo.check_crl = true;

  SECTION("online fetch, then served from the on-disk cache") {
    StoreCertSource src(opts);
    vo.certs = &src;
    auto v = verify_report(report, raw, vo);
    INFO(v.message());
    REQUIRE(v.ok());
    CHECK(kds.requests == 3);  // VCEK, cert_chain, crl
    {
      std::lock_guard lk(kds.mu);
      bool saw_vcek = false;
      for (const auto& t : kds.targets)
        if (t.find("/vcek/v1/Milan/" + hex_encode(chip) + "?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115") == 0)
          saw_vcek = true;
      CHECK(saw_vcek);
    }
    CHECK(std::filesystem::exists(cache.path / vcek_store_path(LeafQuery{Product::milan, VekKind::vcek, chip, {3, 0, 8, 115}})));
    StoreCertSource again(opts);
    vo.certs = &again;
    auto v2 = verify_report(report, raw, vo);
    CHECK(v2.ok());
    CHECK(kds.requests == 3);  // nothing new: VCEK, chain and fresh CRL all cached
    CHECK(again.kds_requests() == 0);
  }
  SECTION("rate-limited twice, then served: retried with doubling back-off") {
    kds.failures = 2;
    StoreCertSource src(opts);
    vo.certs = &src;
    auto v = verify_report(report, raw, vo);
    INFO(v.message());
    CHECK(v.ok());
    REQUIRE(sleeps.size() == 2);
    CHECK(sleeps[0].count() == 100);
    CHECK(sleeps[1].count() == 200);
  }
  SECTION("KDS keeps failing: bounded attempts, ERR_VEK_UNAVAILABLE") {
    kds.failures = 1000;
    StoreCertSource src(opts);
    vo.certs = &src;
    auto v = verify_report(report, raw, vo);
    CHECK(v.error == SnpError::vek_unavailable);
    CHECK(src.kds_requests() == 3);
  }
  SECTION("offline mode: no KDS, store miss") {
    auto off = snptest::test_store_options(store.path);
    StoreCertSource src(off);
    vo.certs = &src;
    CHECK(verify_report(report, raw, vo).error == SnpError::vek_unavailable);
    CHECK(kds.requests == 0);
  }
  SECTION("a rogue cert_chain from the network is not trusted") {
    kds.bodies["/vcek/v1/Milan/cert_chain"] =
        snptest::to_pem(snptest::rogue_chain().ask.get()) + snptest::to_pem(snptest::rogue_chain().ark.get());
    StoreCertSource src(opts);
    vo.certs = &src;
    CHECK(verify_report(report, raw, vo).error == SnpError::chain_invalid);
  }
}
