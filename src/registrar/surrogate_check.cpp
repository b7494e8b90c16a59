#include "registrar/surrogate_check.hpp"

#include <ctime>

#include "common/attest/azure/hcl_report.hpp"
#include "common/attest/parse_error.hpp"
#include "common/attest/snp/cert_table.hpp"
#include "common/attest/snp/detect.hpp"
#include "common/attest/snp/ek_binding.hpp"
#include "common/attest/snp/policy.hpp"
#include "common/attest/snp/report.hpp"
#include "common/attest/snp/surrogate.hpp"
#include "common/service/http/client.hpp"

namespace kl::registrar {

using snp::SnpError;
using snp::SnpVerdict;

namespace {

SurrogateOutcome failed(const SnpVerdict& v) {
  SurrogateOutcome o;
  o.error = v.error;
  o.reason = v.message();
  o.failed_checks.push_back(std::string(snp::error_code(v.error)));
  return o;
}

// Several independent checks (EK binding, launch policy) after the signature verified: the first in spec order
// decides the error, the others are listed so an operator sees every problem at once.
void add_failure(SurrogateOutcome& o, const SnpVerdict& v) {
  if (v.ok()) return;
  if (o.ok()) {
    o.error = v.error;
    o.reason = v.message();
  }
  o.failed_checks.push_back(std::string(snp::error_code(v.error)));
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::unique_ptr<snp::CertSource> source_from(const SurrogateSettings& s) {
  snp::StoreCertSource::Options o;
  o.store_dir = s.cert_store;
  for (auto& [product, pins] : o.ark_pins) pins.insert(pins.end(), s.extra_ark_pins.begin(), s.extra_ark_pins.end());
  if (s.kds) {
    snp::KdsOptions k;
    k.get = kds_http_get();
    k.base_url = s.kds_url;
    k.cache_dir = s.kds_cache;
    o.kds = std::move(k);
  }
  return std::make_unique<snp::StoreCertSource>(std::move(o));
}

}  // namespace

SurrogateVerifier::SurrogateVerifier(SurrogateSettings settings, std::unique_ptr<snp::CertSource> certs,
                                     std::optional<std::chrono::system_clock::time_point> clock)
    : settings_(std::move(settings)), certs_(std::move(certs)), clock_(clock) {
  if (!certs_ && settings_.enabled) certs_ = source_from(settings_);
}

std::vector<std::string> SurrogateVerifier::warnings() const {
  if (const auto* s = dynamic_cast<const snp::StoreCertSource*>(certs_.get())) return s->warnings();
  return {};
}

std::vector<std::string> SurrogateVerifier::trusted_products() const {
  std::vector<std::string> out;
  if (!certs_) return out;
  for (snp::Product p : {snp::Product::milan, snp::Product::genoa, snp::Product::turin})
    if (certs_->ark(p)) out.emplace_back(snp::product_name(p));
  return out;
}

snp::VerifyOptions SurrogateVerifier::verify_options() const {
  snp::VerifyOptions o;
  o.certs = certs_.get();
  o.product = settings_.product;
  o.time = clock_;
  o.check_crl = settings_.crl != CrlMode::off;
  o.crl_missing_ok = settings_.crl == CrlMode::when_present;   // a CRL that is there must be good
  o.cache = &cache_;
  return o;
}

SurrogateOutcome SurrogateVerifier::check_snp(ByteView ekcert, ByteView ek_tpm) const {
  if (!settings_.enabled || !certs_)
    return failed(SnpVerdict::fail(SnpError::report_malformed,
                                   "ekcert holds an SEV-SNP report, but EK-certificate surrogates are disabled "
                                   "([registrar] snp_surrogates = off)"));
  snp::Detection d = snp::detect_surrogate(ekcert);
  if (d.kind != snp::EkcertKind::snp_report)
    return failed(SnpVerdict::fail(SnpError::report_malformed, d.reason));
  snp::VerifyOptions vo = verify_options();
  snp::SnpReport report;
  try {
    report = snp::parse_report(d.report);
    if (!d.cert_table.empty()) {
      snp::CertTable t = snp::parse_cert_table(d.cert_table);
      vo.vek = report.signing_key() == snp::SigningKey::vlek ? t.vlek : t.vcek;
      vo.intermediate = t.ask;   // a table's ARK is never used: ARKs are pinned
    }
  } catch (const ParseError& e) {
    return failed(SnpVerdict::fail(SnpError::report_malformed, e.what()));
  }
  // Without a valid signature nothing else in the report means anything: stop here.
  snp::VerifyResult v = snp::verify_report(report, d.report, vo);
  if (!v.ok()) return failed(v);

  SurrogateOutcome out;
  add_failure(out, snp::check_ek_binding(report, ek_tpm, snp::EkBindingOptions{settings_.allow_bare_tpmt}));
  add_failure(out, snp::validate_report(report, settings_.policy, v.product));
  if (!out.ok()) return out;
  out.evidence = snp::surrogate_summary(report, v, d.report);
  out.evidence["ek_binding"] = "REPORT_DATA = SHA-512(ek_tpm)";
  out.evidence["verified_at"] = utc_now();
  return out;
}

SurrogateOutcome SurrogateVerifier::check_hcl(ByteView hcl, ByteView ek_tpm, ByteView aik_tpm,
                                              ByteView iak_tpm) const {
  if (!settings_.enabled || !certs_)
    return failed(SnpVerdict::fail(SnpError::hcl_malformed,
                                   "an Azure HCL report was sent, but EK-certificate surrogates are disabled "
                                   "([registrar] snp_surrogates = off)"));
  azure::HclReport r;
  try {
    r = azure::parse_hcl_report(hcl);
  } catch (const ParseError& e) {
    std::string why = e.what();
    const std::string prefix = "ERR_HCL_MALFORMED: ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    return failed(SnpVerdict::fail(SnpError::hcl_malformed, why));
  }
  azure::HclCheckOptions ho;
  ho.verify = verify_options();
  ho.policy = &settings_.policy;
  ho.allow_missing_ek = settings_.azure_allow_missing_ek;
  azure::HclResult res = azure::verify_hcl_report(r, ek_tpm, ho);
  if (!res.ok()) return failed(res);

  // HCLAkPub names the Azure AK (persisted at 0x81000003): record which registered key it is, if any.
  nlohmann::json ak_bound = nullptr;
  if (!aik_tpm.empty() && azure::check_hcl_ak(*res.claims, aik_tpm).ok()) ak_bound = "aik_tpm";
  else if (!iak_tpm.empty() && azure::check_hcl_ak(*res.claims, iak_tpm).ok()) ak_bound = "iak_tpm";
  // verify_hcl_report compared HCLEkPub with ek_tpm (when there is one).
  const bool ek_bound = res.claims->ek_pub.has_value() && !ek_tpm.empty();
  if (!ek_bound && ak_bound.is_null())
    return failed(SnpVerdict::fail(SnpError::ak_binding,
                                   "the HCL runtime claims carry no HCLEkPub, and HCLAkPub is neither aik_tpm nor "
                                   "iak_tpm: the report binds no key of this registration"));

  SurrogateOutcome out;
  out.evidence = {{"type", "azure_hcl"},
                  {"snp", snp::surrogate_summary(r.snp, res.snp_result, r.snp_report_raw)},
                  {"hcl_ek_bound", ek_bound},
                  {"hcl_ak_bound", ak_bound},
                  {"vm_unique_id", res.claims->vm_unique_id ? nlohmann::json(*res.claims->vm_unique_id) : nullptr},
                  {"runtime_claims", res.claims->json},
                  {"hcl_report", base64_encode(hcl)},
                  {"verified_at", utc_now()}};
  return out;
}

snp::HttpGet kds_http_get() {
  return [](const std::string& url) -> std::optional<Bytes> {
    const bool tls = url.rfind("https://", 0) == 0;
    if (!tls && url.rfind("http://", 0) != 0) return std::nullopt;
    const std::string rest = url.substr(tls ? 8 : 7);
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash), target = slash == std::string::npos ? "/" : rest.substr(slash);
    std::uint16_t port = tls ? 443 : 80;
    if (const auto colon = authority.rfind(':'); colon != std::string::npos && authority.find(']') == std::string::npos) {
      try {
        port = static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
      } catch (const std::exception&) {
        return std::nullopt;
      }
      authority = authority.substr(0, colon);
    }
    http::ClientOptions opts;
    opts.timeout = std::chrono::milliseconds(15000);
    if (tls) {
      http::TlsClientConfig t;
      t.ca_files = {"/etc/ssl/certs/ca-certificates.crt"};
      opts.tls = t;
    }
    try {
      http::Client c(authority, port, opts);
      auto r = c.request("GET", target, "", {{"Accept", "application/octet-stream, application/x-pem-file"}}, "");
      if (r.status != 200) return std::nullopt;
      return Bytes(r.body.begin(), r.body.end());
    } catch (const std::exception&) {
      return std::nullopt;
    }
  };
}

}  // namespace kl::registrar
