#include "support/snp_chain.hpp"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

#include "common/attest/crypto/digest.hpp"

namespace snptest {

using namespace kl;
namespace fs = std::filesystem;

namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("snp test chain: ") + what + " failed");
}

}  // namespace

namespace {

ossl::Pkey gen_rsa(int bits) {
  ossl::Pkey k(EVP_RSA_gen(static_cast<unsigned>(bits)));
  require(static_cast<bool>(k), "key generation");
  return k;
}

ossl::Pkey gen_p384() {
  ossl::Pkey k(EVP_EC_gen("secp384r1"));
  require(static_cast<bool>(k), "key generation");
  return k;
}

X509_NAME* amd_name(const std::string& cn) {
  X509_NAME* n = X509_NAME_new();
  auto add = [&](const char* f, const std::string& v) {
    X509_NAME_add_entry_by_txt(n, f, MBSTRING_ASC, reinterpret_cast<const unsigned char*>(v.c_str()), -1, -1, 0);
  };
  add("OU", "Engineering");
  add("C", "US");
  add("L", "Santa Clara");
  add("ST", "CA");
  add("O", "Advanced Micro Devices");
  add("CN", cn);
  return n;
}

// AMD signs every certificate with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
void sign_pss(X509* cert, EVP_PKEY* key) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  require(EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha384(), nullptr, key) == 1, "EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha384(), nullptr, ");
  require(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1, "EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ==");
  require(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1, "EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1");
  require(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1, "EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1");
  require(X509_sign_ctx(cert, ctx.get()) > 0, "X509_sign_ctx(cert, ctx.get()) > 0");
}

ossl::X509Ptr new_cert(const std::string& subject_cn, X509* issuer, EVP_PKEY* subject_key, long serial,
                       long nb_days, long na_days) {
  ossl::X509Ptr c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial);
  X509_NAME* subj = amd_name(subject_cn);
  X509_set_subject_name(c.get(), subj);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : subj);
  X509_NAME_free(subj);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), nb_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), na_days * 86400);
  X509_set_pubkey(c.get(), subject_key);
  return c;
}

void add_ext(X509* c, const std::string& oid_suffix, ByteView value) {
  using Obj = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>>;
  Obj obj(OBJ_txt2obj(("1.3.6.1.4.1.3704.1." + oid_suffix).c_str(), 1));
  std::unique_ptr<ASN1_OCTET_STRING, ossl::Deleter<ASN1_OCTET_STRING_free>> os(ASN1_OCTET_STRING_new());
  ASN1_OCTET_STRING_set(os.get(), value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, os.get());
  require(ext, "ext");
  X509_add_ext(c, ext, -1);
  X509_EXTENSION_free(ext);
}

Bytes der_integer(long v) {
  std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER_free>> i(ASN1_INTEGER_new());
  ASN1_INTEGER_set(i.get(), v);
  unsigned char* der = nullptr;
  int n = i2d_ASN1_INTEGER(i.get(), &der);
  Bytes b(der, der + n);
  OPENSSL_free(der);
  return b;
}

Bytes der_ia5(const std::string& s) {
  Bytes b{0x16, static_cast<std::uint8_t>(s.size())};
  b.insert(b.end(), s.begin(), s.end());
  return b;
}

// RSA-4096 generation takes seconds and ctest runs each test case in its own process: keep the generated test keys
// under the build directory and reuse them (written via rename, so parallel runs never read half a file).
ossl::Pkey cached_rsa4096(const std::string& name) {
  fs::path dir = fs::path(KL_BINARY_DIR) / "snp-test-keys";
  fs::path file = dir / (name + ".pem");
  if (std::ifstream in{file, std::ios::binary}) {
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    ossl::Pkey k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (k && EVP_PKEY_get_bits(k.get()) == 4096) return k;
  }
  ossl::Pkey k = gen_rsa(4096);
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path tmp = file;
  tmp += ".tmp" + std::to_string(std::random_device{}());
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(data, n);
  }
  fs::rename(tmp, file, ec);
  if (ec) fs::remove(tmp, ec);
  return k;
}

TestChain build_chain(const std::string& prefix) {
  TestChain t;
  t.ark_key = cached_rsa4096(prefix + "ark");
  t.ask_key = cached_rsa4096(prefix + "ask");
  t.asvk_key = cached_rsa4096(prefix + "asvk");
  t.ark = new_cert("ARK-Milan", nullptr, t.ark_key.get(), 1, -400, 9000);
  sign_pss(t.ark.get(), t.ark_key.get());
  t.ask = new_cert("SEV-Milan", t.ark.get(), t.ask_key.get(), 2, -400, 9000);
  sign_pss(t.ask.get(), t.ark_key.get());
  t.asvk = new_cert("SEV-VLEK-Milan", t.ark.get(), t.asvk_key.get(), 3, -400, 9000);
  sign_pss(t.asvk.get(), t.ark_key.get());
  t.ark_sha256 = snp::sha256_fingerprint(t.ark.get());
  return t;
}

}  // namespace

const TestChain& test_chain() {
  static const TestChain chain = build_chain("test-");
  return chain;
}

const TestChain& rogue_chain() {
  static const TestChain chain = build_chain("rogue-");
  return chain;
}

TestLeaf make_leaf(const TestChain& chain, const LeafSpec& spec) {
  TestLeaf l;
  l.key = gen_p384();
  X509* issuer = spec.vlek ? chain.asvk.get() : chain.ask.get();
  EVP_PKEY* issuer_key = spec.vlek ? chain.asvk_key.get() : chain.ask_key.get();
  l.cert = new_cert(spec.vlek ? "SEV-VLEK" : "SEV-VCEK", issuer, l.key.get(), spec.serial, spec.not_before_days,
                    spec.not_after_days);
  add_ext(l.cert.get(), "1", der_integer(0));
  add_ext(l.cert.get(), "2", der_ia5(spec.product_name));
  add_ext(l.cert.get(), "3.1", der_integer(spec.tcb.bl));
  add_ext(l.cert.get(), "3.2", der_integer(spec.tcb.tee));
  add_ext(l.cert.get(), "3.3", der_integer(spec.tcb.snp));
  for (const char* s : {"3.4", "3.5", "3.6", "3.7"}) add_ext(l.cert.get(), s, der_integer(0));
  add_ext(l.cert.get(), "3.8", der_integer(spec.tcb.ucode));
  if (spec.vlek)
    add_ext(l.cert.get(), "5", der_ia5("CN=test-csp.example"));
  else
    add_ext(l.cert.get(), "4", spec.hw_id);
  sign_pss(l.cert.get(), issuer_key);
  l.der = to_der(l.cert.get());
  return l;
}

namespace {
void put32(Bytes& b, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(Bytes& b, std::size_t off, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put(Bytes& b, std::size_t off, const Bytes& v) { std::copy(v.begin(), v.end(), b.begin() + off); }
}  // namespace

Bytes build_report(const ReportSpec& s) {
  Bytes r(snp::kReportSize, 0);
  put32(r, 0x000, s.version);
  put32(r, 0x004, 0);
  put64(r, 0x008, s.policy);
  put32(r, 0x030, s.vmpl);
  put32(r, 0x034, 1);
  std::uint64_t tcb = snp::encode_tcb(s.tcb, snp::Product::milan);
  put64(r, 0x038, tcb);
  put64(r, 0x040, 1);
  put32(r, 0x048, s.signer_info);
  if (!s.report_data.empty()) put(r, 0x050, s.report_data);
  Bytes m = s.measurement;
  if (m.empty())
    for (int i = 0; i < 48; ++i) m.push_back(static_cast<std::uint8_t>(0xA0 + i));
  put(r, 0x090, m);
  for (std::size_t i = 0x160; i < 0x180; ++i) r[i] = 0xFF;
  put64(r, 0x180, tcb);
  if (s.version >= 3) {
    r[0x188] = s.cpuid_fam;
    r[0x189] = s.cpuid_mod;
    r[0x18A] = s.cpuid_step;
  }
  if (!s.chip_id.empty()) put(r, 0x1A0, s.chip_id);
  put64(r, 0x1E0, tcb);
  r[0x1E8] = 4;
  r[0x1E9] = 52;
  r[0x1EA] = 1;
  r[0x1EC] = 4;
  r[0x1ED] = 52;
  r[0x1EE] = 1;
  put64(r, 0x1F0, tcb);
  return r;
}

void sign_report(Bytes& raw, EVP_PKEY* key) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  require(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key) == 1, "EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr");
  size_t len = 0;
  require(EVP_DigestSign(ctx.get(), nullptr, &len, raw.data(), snp::kSignedRegionSize) == 1, "EVP_DigestSign(ctx.get(), nullptr, &len, raw.data(), snp::kS");
  Bytes sig(len);
  require(EVP_DigestSign(ctx.get(), sig.data(), &len, raw.data(), snp::kSignedRegionSize) == 1, "EVP_DigestSign(ctx.get(), sig.data(), &len, raw.data(), snp:");
  const unsigned char* p = sig.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  require(es, "es");
  std::fill(raw.begin() + 0x2A0, raw.begin() + 0x330, 0);
  BN_bn2lebinpad(ECDSA_SIG_get0_r(es), raw.data() + 0x2A0, 72);
  BN_bn2lebinpad(ECDSA_SIG_get0_s(es), raw.data() + 0x2E8, 72);
  ECDSA_SIG_free(es);
}

Bytes make_ark_crl(const TestChain& chain, const std::vector<long>& revoked, long next_update_days) {
  return make_crl(chain.ark.get(), chain.ark_key.get(), revoked, next_update_days);
}

Bytes make_crl(X509* issuer, EVP_PKEY* issuer_key, const std::vector<long>& revoked, long next_update_days) {
  std::unique_ptr<X509_CRL, ossl::Deleter<X509_CRL_free>> crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  std::unique_ptr<ASN1_TIME, ossl::Deleter<ASN1_TIME_free>> last(X509_gmtime_adj(nullptr, -86400));
  std::unique_ptr<ASN1_TIME, ossl::Deleter<ASN1_TIME_free>> next(X509_gmtime_adj(nullptr, next_update_days * 86400));
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (long serial : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER_free>> s(ASN1_INTEGER_new());
    ASN1_INTEGER_set(s.get(), serial);
    X509_REVOKED_set_serialNumber(r, s.get());
    X509_REVOKED_set_revocationDate(r, last.get());
    X509_CRL_add0_revoked(crl.get(), r);
  }
  X509_CRL_sort(crl.get());
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  require(EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha384(), nullptr, issuer_key) == 1, "EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha384(), nullptr, ");
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48);
  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384());
  require(X509_CRL_sign_ctx(crl.get(), ctx.get()) > 0, "X509_CRL_sign_ctx(crl.get(), ctx.get()) > 0");
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  Bytes b(der, der + n);
  OPENSSL_free(der);
  return b;
}

TempDir::TempDir() {
  std::random_device rd;
  path = fs::temp_directory_path() / ("kl-snp-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path);
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

void write_file(const fs::path& p, ByteView data) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::string to_pem(X509* cert) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes to_der(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  Bytes b(der, der + n);
  OPENSSL_free(der);
  return b;
}

void write_store(const TestChain& chain, const fs::path& dir) {
  write_file(dir / "Milan" / "ark.pem", as_bytes(to_pem(chain.ark.get())));
  write_file(dir / "Milan" / "ask.pem", as_bytes(to_pem(chain.ask.get())));
  write_file(dir / "Milan" / "asvk.pem", as_bytes(to_pem(chain.asvk.get())));
}

snp::StoreCertSource::Options test_store_options(const fs::path& dir) {
  snp::StoreCertSource::Options o;
  o.store_dir = dir;
  o.ark_pins = {{snp::Product::milan, {test_chain().ark_sha256}}};
  return o;
}

Bytes surrogate_report(EVP_PKEY* vcek_key, ByteView ek_tpm, ReportSpec spec) {
  spec.report_data = crypto::digest(crypto::HashAlg::sha512, ek_tpm);
  Bytes raw = build_report(spec);
  sign_report(raw, vcek_key);
  return raw;
}

std::string private_key_pem(EVP_PKEY* key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

ossl::Pkey private_key_from_pem(const std::string& pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::Pkey k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  require(static_cast<bool>(k), "PEM_read_bio_PrivateKey");
  return k;
}

Bytes chip_id_of(std::uint8_t seed) {
  Bytes b(64);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(seed * 31 + i * 7 + 1);
  return b;
}

}  // namespace snptest
