// kl::tls::ensure_tls_dir: the cv_ca layout of `tls_dir = generate` (wire-contract §5.3).
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/x509_vfy.h>

#include "common/service/http/client.hpp"
#include "common/service/http/json_response.hpp"
#include "common/service/http/server.hpp"
#include "common/service/tls/cert_builder.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "unit/http/raw_peer.hpp"

namespace fs = std::filesystem;
namespace kt = kl::tls;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool chains_to(const fs::path& leaf, const fs::path& ca) {
  auto ca_cert = kt::load_certificate(ca);
  auto cert = kt::load_certificate(leaf);
  kl::ossl::X509Store store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca_cert.get());
  kl::ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  return X509_verify_cert(ctx.get()) == 1;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("ensure_tls_dir generates the cv_ca layout with private permissions", "[tls]") {
  kltest::TempDir tmp;
  kt::TlsDirRequest req;
  req.dir = tmp.path() / "cv_ca";
  req.generate = true;
  req.server_ip = "127.0.0.1";
  req.extra_sans = {"verifier.example.org", "10.1.2.3", "::1"};

  auto files = kt::ensure_tls_dir(req);
  CHECK(files.ca_cert == req.dir / "cacert.crt");
  CHECK(files.server_cert == req.dir / "server-cert.crt");
  CHECK(files.server_key == req.dir / "server-private.pem");
  CHECK(files.client_cert == req.dir / "client-cert.crt");
  CHECK(files.client_key == req.dir / "client-private.pem");

  CHECK(mode_of(req.dir) == 0700);
  CHECK(mode_of(req.dir / "ca-private.pem") == 0600);
  CHECK(mode_of(files.server_key) == 0600);
  CHECK(mode_of(files.client_key) == 0600);
  CHECK(mode_of(files.ca_cert) == 0644);

  CHECK(kt::certificate_common_name(files.ca_cert) == "Keylime Certificate Authority");
  CHECK(kt::certificate_common_name(files.server_cert) == "server");
  CHECK(kt::certificate_common_name(files.client_cert) == "client");
  auto sans = kt::certificate_sans(files.server_cert);
  CHECK(contains(sans, "127.0.0.1"));
  CHECK(contains(sans, "10.1.2.3"));
  CHECK(contains(sans, "::1"));
  CHECK(contains(sans, "verifier.example.org"));
  CHECK(chains_to(files.server_cert, files.ca_cert));
  CHECK(chains_to(files.client_cert, files.ca_cert));

  // RSA-2048 like upstream's default cert_bits.
  auto key = kt::load_private_key(files.server_key);
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA);
  CHECK(EVP_PKEY_get_bits(key.get()) == 2048);

  SECTION("a second call changes nothing") {
    std::map<fs::path, std::string> before;
    for (const auto& e : fs::directory_iterator(req.dir)) before[e.path()] = slurp(e.path());
    REQUIRE(before.size() == 6);
    auto again = kt::ensure_tls_dir(req);
    CHECK(again.server_cert == files.server_cert);
    std::map<fs::path, std::string> after;
    for (const auto& e : fs::directory_iterator(req.dir)) after[e.path()] = slurp(e.path());
    CHECK(after == before);
  }

  SECTION("a missing leaf is re-issued under the existing CA, others untouched") {
    auto ca_before = slurp(files.ca_cert);
    auto server_before = slurp(files.server_cert);
    fs::remove(files.client_cert);
    fs::remove(files.client_key);
    kt::ensure_tls_dir(req);
    CHECK(slurp(files.ca_cert) == ca_before);
    CHECK(slurp(files.server_cert) == server_before);
    CHECK(chains_to(files.client_cert, files.ca_cert));
  }

  SECTION("half a pair is refused rather than overwritten") {
    fs::remove(files.server_key);
    auto cert_before = slurp(files.server_cert);
    CHECK_THROWS_WITH(kt::ensure_tls_dir(req), Catch::Contains("server-private.pem") && Catch::Contains("missing"));
    CHECK(slurp(files.server_cert) == cert_before);
  }

  SECTION("generated files serve mTLS end to end") {
    kl::http::TlsServerConfig tls{files.server_cert.string(), files.server_key.string(), "", {files.ca_cert.string()}};
    kl::http::ServerOptions so;
    so.listeners.push_back(kl::http::ListenerConfig{"127.0.0.1", 0, tls});
    kl::http::Server server(so, [](const kl::http::Request& r) {
      return kl::http::json_envelope(200, {{"cn", r.peer ? r.peer->subject_cn : ""},
                                           {"verified", r.peer && r.peer->verified}});
    });
    server.start();
    kl::http::TlsClientConfig c{files.client_cert.string(), files.client_key.string(), "", {files.ca_cert.string()}, {}, true};
    kl::http::ClientOptions co;
    co.tls = c;
    kl::http::Client client("127.0.0.1", server.bound_ports()[0], co);
    auto r = nlohmann::json::parse(client.request("GET", "/").body)["results"];
    CHECK(r["cn"] == "client");
    CHECK(r["verified"] == true);
  }
}

TEST_CASE("ensure_tls_dir for the registrar: no client cert", "[tls]") {
  kltest::TempDir tmp;
  kt::TlsDirRequest req;
  req.dir = tmp.path() / "reg_ca";
  req.generate = true;
  req.server_ip = "0.0.0.0";
  req.with_client_cert = false;
  auto files = kt::ensure_tls_dir(req);
  CHECK(files.client_cert.empty());
  CHECK(files.client_key.empty());
  CHECK_FALSE(fs::exists(req.dir / "client-cert.crt"));
  CHECK(contains(kt::certificate_sans(files.server_cert), "0.0.0.0"));
}

TEST_CASE("ensure_tls_dir without generate only checks", "[tls]") {
  kltest::TempDir tmp;
  kt::TlsDirRequest req;
  req.dir = tmp.path() / "cv_ca";
  CHECK_THROWS_WITH(kt::ensure_tls_dir(req), Catch::Contains("incomplete") && Catch::Contains("cacert.crt"));
  CHECK_FALSE(fs::exists(req.dir));

  req.generate = true;
  kt::ensure_tls_dir(req);
  req.generate = false;
  auto files = kt::ensure_tls_dir(req);
  CHECK(files.server_key == req.dir / "server-private.pem");
}

TEST_CASE("ensure_tls_dir refuses a new CA under existing leaves", "[tls]") {
  kltest::TempDir tmp;
  kt::TlsDirRequest req;
  req.dir = tmp.path() / "cv_ca";
  req.generate = true;
  kt::ensure_tls_dir(req);
  fs::remove(req.dir / "cacert.crt");
  fs::remove(req.dir / "ca-private.pem");
  CHECK_THROWS_WITH(kt::ensure_tls_dir(req), Catch::Contains("refusing"));
}

TEST_CASE("ensure_tls_dir reports an unusable directory", "[tls]") {
  kltest::TempDir tmp;
  std::ofstream(tmp.path() / "file") << "x";
  kt::TlsDirRequest req;
  req.dir = tmp.path() / "file";
  req.generate = true;
  CHECK_THROWS_WITH(kt::ensure_tls_dir(req), Catch::Contains("not a directory"));
  req.dir = tmp.path() / "file" / "sub";
  CHECK_THROWS_WITH(kt::ensure_tls_dir(req), Catch::Contains("cannot create"));
}

TEST_CASE("make_self_signed produces a self-issued leaf", "[tls]") {
  kltest::TempDir tmp;
  auto f = kt::make_self_signed(tmp.path(), "agent", "d432fbb3-d2f1-4a97-9ef7-75bd81c00000", {"127.0.0.1", "agent.local"});
  CHECK(f.ca_cert.empty());
  CHECK(mode_of(f.key) == 0600);
  CHECK(kt::certificate_common_name(f.cert) == "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  auto sans = kt::certificate_sans(f.cert);
  CHECK(sans == std::vector<std::string>{"127.0.0.1", "agent.local"});
  CHECK(chains_to(f.cert, f.cert));
}
