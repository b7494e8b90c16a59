// TrustStore::load_directory: PEM bundles, DER files with any extension, unreadable and junk files.
#include <catch2/catch.hpp>

#include <fstream>

#include "cert_factory.hpp"
#include "common/attest/ek/certificate_field.hpp"
#include "common/attest/ek/trust_store.hpp"
#include "support/temp_dir.hpp"

using namespace kl;
using namespace kl::ektest;

namespace {

void write_file(const std::filesystem::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("load_directory reads PEM bundles and DER files of any extension", "[ek][store]") {
  kl::testing::TempDir dir;
  auto rsa = make_chain(KeyKind::rsa2048, "rsa");
  auto ecc = make_chain(KeyKind::p384, "ecc");
  auto other = make_chain(KeyKind::p256, "other");

  // Two certificates in one file, with a private-key-like block between them that must be skipped.
  write_file(dir.path() / "vendor_bundle.pem",
             pem_of(rsa.root.get()) + "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" +
                 pem_of(rsa.inter.get()));
  auto ecc_der = der_of(ecc.inter.get());
  write_file(dir.path() / "ECC_CA_01.cer", as_string(ecc_der));
  write_file(dir.path() / "readme.txt", "these are the TPM vendor CAs\n");
  write_file(dir.path() / "empty.crt", "");
  std::filesystem::create_directory(dir.path() / "subdir");
  write_file(dir.path() / "subdir" / "ignored.pem", pem_of(other.root.get()));

  auto store = ek::TrustStore::load_directory(dir.path());
  CHECK(store.size() == 3);
  CHECK(contains(store.warnings(), "readme.txt"));
  CHECK(contains(store.warnings(), "empty.crt"));
  CHECK_FALSE(contains(store.warnings(), "vendor_bundle.pem"));
  CHECK_FALSE(contains(store.warnings(), "ECC_CA_01.cer"));
  REQUIRE(store.certificates().size() == 3);
  CHECK(ek::subject_text(store.certificates()[0].get()) == "CN=Test ecc EK Intermediate CA");  // sorted by file name

  CHECK(ek::verify_chain(store, rsa.leaf.get(), {}).trusted);       // intermediate from the bundle
  CHECK(ek::verify_chain(store, ecc.leaf.get(), {}).trusted);       // DER intermediate, no root needed
  auto v = ek::verify_chain(store, other.leaf.get(), {});
  CHECK_FALSE(v.trusted);
  CHECK(v.missing_issuer == "CN=Test other EK Intermediate CA");
}

TEST_CASE("load_directory of a missing directory: empty store with a warning", "[ek][store]") {
  auto store = ek::TrustStore::load_directory("/nonexistent/keylime/tpm_cert_store");
  CHECK(store.size() == 0);
  REQUIRE(store.warnings().size() == 1);
  CHECK(store.warnings()[0].find("/nonexistent/keylime/tpm_cert_store") != std::string::npos);
  auto chain = make_chain(KeyKind::p256, "none");
  auto v = ek::verify_chain(store, chain.leaf.get(), {});
  CHECK_FALSE(v.trusted);
  CHECK(v.error.find("trust store is empty") != std::string::npos);
}

TEST_CASE("load_directory skips unreadable files with a warning", "[ek][store]") {
  kl::testing::TempDir dir;
  auto chain = make_chain(KeyKind::rsa2048, "perm");
  write_file(dir.path() / "good.pem", pem_of(chain.root.get()));
  write_file(dir.path() / "locked.pem", pem_of(chain.inter.get()));
  std::filesystem::permissions(dir.path() / "locked.pem", std::filesystem::perms::none);
  // Root ignores file permissions; only then is the file still readable.
  const bool readable = static_cast<bool>(std::ifstream(dir.path() / "locked.pem"));

  auto store = ek::TrustStore::load_directory(dir.path());
  if (readable) {
    CHECK(store.size() == 2);
  } else {
    CHECK(store.size() == 1);
    CHECK(contains(store.warnings(), "locked.pem"));
  }
  std::filesystem::permissions(dir.path() / "locked.pem", std::filesystem::perms::owner_all);
}

TEST_CASE("from_certificates keeps the certificates and ignores null entries", "[ek][store]") {
  auto chain = make_chain(KeyKind::p256, "mem");
  std::vector<ossl::X509Ptr> v;
  v.push_back(dup(chain.root.get()));
  v.push_back(nullptr);
  auto store = ek::TrustStore::from_certificates(std::move(v));
  CHECK(store.size() == 1);
  CHECK(ek::verify_chain(store, chain.leaf.get(), [&] {
          std::vector<ossl::X509Ptr> i;
          i.push_back(dup(chain.inter.get()));
          return i;
        }()).trusted);
}
