#include "common/attest/snp/cert_source.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <system_error>
#include <thread>

#include "common/attest/crypto/digest.hpp"

namespace kl::snp {

namespace fs = std::filesystem;

namespace {

std::optional<Bytes> read_file(const fs::path& p) {
  std::error_code ec;
  if (p.empty() || !fs::is_regular_file(p, ec)) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return b;
}

// Write-then-rename so a concurrent reader never sees half a certificate.
void write_file_atomic(const fs::path& p, ByteView data) {
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  fs::path tmp = p;
  tmp += ".tmp" + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!out) return;
  }
  fs::rename(tmp, p, ec);
  if (ec) fs::remove(tmp, ec);
}

std::string two_digits(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02u", v);
  return buf;
}

std::string hw_id_hex(const LeafQuery& q) { return hex_encode(q.hw_id); }

const char* kind_dir(VekKind k) { return k == VekKind::vcek ? "vcek" : "vlek"; }

}  // namespace

ossl::X509Ptr load_certificate(ByteView data) {
  auto all = load_certificates(data);
  if (all.empty()) return nullptr;
  return std::move(all.front());
}

std::vector<ossl::X509Ptr> load_certificates(ByteView data) {
  std::vector<ossl::X509Ptr> out;
  if (data.empty()) return out;
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    ossl::Bio bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    while (bio) {
      X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
      if (!c) break;
      out.emplace_back(c);
    }
    ERR_clear_error();
    return out;
  }
  const unsigned char* p = data.data();
  ossl::X509Ptr c(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
  ERR_clear_error();
  if (c && p == data.data() + data.size()) out.push_back(std::move(c));
  return out;
}

std::string sha256_fingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  if (n <= 0) return {};
  struct Free {
    void operator()(unsigned char* q) const { OPENSSL_free(q); }
  };
  std::unique_ptr<unsigned char, Free> guard(der);
  return hex_encode(crypto::digest(crypto::HashAlg::sha256, ByteView(der, static_cast<std::size_t>(n))));
}

std::map<Product, std::vector<std::string>> amd_ark_pins() {
  return {
      {Product::milan, {"69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"}},
      {Product::genoa, {"4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"}},
      {Product::turin, {"1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"}},
  };
}

std::string kds_vcek_url(const std::string& base, const LeafQuery& q) {
  std::string u = base + "/vcek/v1/" + std::string(product_name(q.product)) + "/" + hw_id_hex(q) +
                   "?blSPL=" + two_digits(q.tcb.bl) + "&teeSPL=" + two_digits(q.tcb.tee) +
                   "&snpSPL=" + two_digits(q.tcb.snp) + "&ucodeSPL=" + two_digits(q.tcb.ucode);
  if (uses_turin_tcb_layout(q.product)) u += "&fmcSPL=" + two_digits(q.tcb.fmc);
  return u;
}

std::string kds_cert_chain_url(const std::string& base, Product p, VekKind kind) {
  return base + "/" + kind_dir(kind) + "/v1/" + std::string(product_name(p)) + "/cert_chain";
}

std::string kds_crl_url(const std::string& base, Product p, VekKind kind) {
  return base + "/" + kind_dir(kind) + "/v1/" + std::string(product_name(p)) + "/crl";
}

fs::path vcek_store_path(const LeafQuery& q) {
  return fs::path("vcek") / std::string(product_name(q.product)) / hw_id_hex(q) / (tcb_key(q.tcb) + ".der");
}

StoreCertSource::StoreCertSource(Options opts) : opts_(std::move(opts)) {
  if (opts_.kds && !opts_.kds->sleep)
    opts_.kds->sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (opts_.store_dir.empty()) return;
  for (Product p : {Product::milan, Product::genoa, Product::turin}) {
    fs::path file = opts_.store_dir / std::string(product_name(p)) / "ark.pem";
    auto bytes = read_file(file);
    if (!bytes) continue;
    auto cert = load_certificate(*bytes);
    if (!cert) {
      warnings_.push_back(file.string() + ": not a certificate");
      continue;
    }
    std::string fp = sha256_fingerprint(cert.get());
    const auto& pins = opts_.ark_pins[p];
    if (std::find(pins.begin(), pins.end(), fp) == pins.end()) {
      warnings_.push_back(file.string() + ": ARK fingerprint " + fp + " is not pinned for " +
                          std::string(product_name(p)) + "; ignored");
      continue;
    }
    arks_[p] = std::move(cert);
  }
}

X509* StoreCertSource::ark(Product p) const {
  auto it = arks_.find(p);
  return it == arks_.end() ? nullptr : it->second.get();
}

unsigned StoreCertSource::kds_requests() const {
  std::lock_guard lk(mu_);
  return kds_requests_;
}

std::optional<Bytes> StoreCertSource::kds_fetch(const std::string& url, const fs::path& cache_rel) const {
  if (!opts_.kds || !opts_.kds->get) return std::nullopt;
  const KdsOptions& k = *opts_.kds;
  if (!k.cache_dir.empty() && !cache_rel.empty()) {
    if (auto cached = read_file(k.cache_dir / cache_rel)) return cached;
  }
  auto delay = k.initial_backoff;
  unsigned attempts = k.max_attempts == 0 ? 1 : k.max_attempts;
  for (unsigned i = 0; i < attempts; ++i) {
    if (i > 0) {
      k.sleep(delay);
      delay *= 2;
    }
    {
      std::lock_guard lk(mu_);
      ++kds_requests_;
    }
    auto body = k.get(url);
    if (body && !body->empty()) {
      if (!k.cache_dir.empty() && !cache_rel.empty()) write_file_atomic(k.cache_dir / cache_rel, *body);
      return body;
    }
  }
  return std::nullopt;
}

ossl::X509Ptr StoreCertSource::intermediate(Product p, VekKind kind) const {
  const std::string pname(product_name(p));
  if (!opts_.store_dir.empty()) {
    if (auto b = read_file(opts_.store_dir / pname / (kind == VekKind::vcek ? "ask.pem" : "asvk.pem")))
      if (auto c = load_certificate(*b)) return c;
  }
  fs::path rel = fs::path(pname) / (kind == VekKind::vcek ? "cert_chain.pem" : "vlek_cert_chain.pem");
  auto body = opts_.kds ? kds_fetch(kds_cert_chain_url(opts_.kds->base_url, p, kind), rel) : std::nullopt;
  if (!body) return nullptr;
  auto certs = load_certificates(*body);
  if (certs.empty()) return nullptr;
  return std::move(certs.front());  // KDS order: ASK/ASVK first, ARK second (the ARK is never taken from here)
}

ossl::X509Ptr StoreCertSource::leaf(const LeafQuery& q) const {
  if (q.kind == VekKind::vcek) {
    fs::path rel = vcek_store_path(q);
    if (!opts_.store_dir.empty())
      if (auto b = read_file(opts_.store_dir / rel))
        if (auto c = load_certificate(*b)) return c;
    if (q.hw_id.empty() || !opts_.kds) return nullptr;
    auto body = kds_fetch(kds_vcek_url(opts_.kds->base_url, q), rel);
    if (!body) return nullptr;
    return load_certificate(*body);
  }
  // VLEKs are not downloadable: pick the operator-supplied one whose extensions match the product and TCB.
  if (opts_.store_dir.empty()) return nullptr;
  fs::path dir = opts_.store_dir / "vlek" / std::string(product_name(q.product));
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto b = read_file(it->path());
    if (!b) continue;
    for (auto& c : load_certificates(*b)) {
      try {
        auto ext = parse_vek_extensions(c.get());
        if (ext.kind() != VekKind::vlek) continue;
        if (ext.bl_spl != q.tcb.bl || ext.tee_spl != q.tcb.tee || ext.snp_spl != q.tcb.snp ||
            ext.ucode_spl != q.tcb.ucode)
          continue;
        if (uses_turin_tcb_layout(q.product) && ext.fmc_spl != q.tcb.fmc) continue;
        return std::move(c);
      } catch (const std::exception&) {
        continue;
      }
    }
  }
  return nullptr;
}

std::optional<Bytes> StoreCertSource::crl(Product p, VekKind kind) const {
  const std::string pname(product_name(p));
  const char* file = kind == VekKind::vcek ? "crl.der" : "vlek_crl.der";
  if (!opts_.store_dir.empty())
    if (auto b = read_file(opts_.store_dir / pname / file)) return b;
  if (!opts_.kds) return std::nullopt;
  // CRLs change: the cached copy is reused only while its nextUpdate lies in the future.
  fs::path rel = fs::path(pname) / file;
  if (!opts_.kds->cache_dir.empty()) {
    if (auto cached = read_file(opts_.kds->cache_dir / rel)) {
      const unsigned char* q = cached->data();
      std::unique_ptr<X509_CRL, ossl::Deleter<X509_CRL_free>> crl(
          d2i_X509_CRL(nullptr, &q, static_cast<long>(cached->size())));
      const ASN1_TIME* next = crl ? X509_CRL_get0_nextUpdate(crl.get()) : nullptr;
      if (next && X509_cmp_current_time(next) > 0) return cached;
      std::error_code ec;
      fs::remove(opts_.kds->cache_dir / rel, ec);
    }
  }
  return kds_fetch(kds_crl_url(opts_.kds->base_url, p, kind), rel);
}

}  // namespace kl::snp
