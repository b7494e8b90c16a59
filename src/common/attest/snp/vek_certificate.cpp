#include "common/attest/snp/vek_certificate.hpp"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <memory>

#include "common/attest/crypto/ossl.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::snp {

namespace {

using Obj = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>>;
using Int = std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER_free>>;
using Ia5 = std::unique_ptr<ASN1_IA5STRING, ossl::Deleter<ASN1_IA5STRING_free>>;

constexpr const char* kArc = "1.3.6.1.4.1.3704.1.";

// The extension value (the OCTET STRING content) for `suffix` under the AMD arc, or nullopt when absent.
std::optional<ByteView> ext_value(X509* cert, const std::string& suffix) {
  Obj obj(OBJ_txt2obj((std::string(kArc) + suffix).c_str(), 1));
  if (!obj) return std::nullopt;
  int idx = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (idx < 0) return std::nullopt;
  X509_EXTENSION* ext = X509_get_ext(cert, idx);
  ASN1_OCTET_STRING* data = ext ? X509_EXTENSION_get_data(ext) : nullptr;
  if (!data) return std::nullopt;
  return ByteView(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
}

std::optional<std::int64_t> integer_ext(X509* cert, const std::string& suffix, const char* name) {
  auto v = ext_value(cert, suffix);
  if (!v) return std::nullopt;
  const unsigned char* p = v->data();
  Int i(d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(v->size())));
  std::int64_t out = 0;
  if (!i || p != v->data() + v->size() || ASN1_INTEGER_get_int64(&out, i.get()) != 1)
    throw ParseError(std::string("VEK extension ") + name + " is not a DER INTEGER");
  return out;
}

std::optional<std::uint32_t> spl_ext(X509* cert, const std::string& suffix, const char* name) {
  auto v = integer_ext(cert, suffix, name);
  if (!v) return std::nullopt;
  if (*v < 0 || *v > 255) throw ParseError(std::string("VEK extension ") + name + " out of range: " + std::to_string(*v));
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::string> ia5_ext(X509* cert, const std::string& suffix, const char* name) {
  auto v = ext_value(cert, suffix);
  if (!v) return std::nullopt;
  const unsigned char* p = v->data();
  Ia5 s(d2i_ASN1_IA5STRING(nullptr, &p, static_cast<long>(v->size())));
  if (!s || p != v->data() + v->size()) throw ParseError(std::string("VEK extension ") + name + " is not an IA5String");
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s.get())),
                     static_cast<std::size_t>(ASN1_STRING_length(s.get())));
}

}  // namespace

std::optional<VekKind> VekExtensions::kind() const {
  if (hw_id && !csp_id) return VekKind::vcek;
  if (csp_id && !hw_id) return VekKind::vlek;
  return std::nullopt;
}

std::optional<Product> VekExtensions::product() const {
  if (!product_name) return std::nullopt;
  return product_from_name(*product_name);
}

VekExtensions parse_vek_extensions(X509* cert) {
  if (!cert) throw ParseError("no VEK certificate");
  VekExtensions e;
  e.struct_version = integer_ext(cert, "1", "structVersion");
  e.product_name = ia5_ext(cert, "2", "productName");
  e.bl_spl = spl_ext(cert, "3.1", "blSPL");
  e.tee_spl = spl_ext(cert, "3.2", "teeSPL");
  e.snp_spl = spl_ext(cert, "3.3", "snpSPL");
  e.spl4 = spl_ext(cert, "3.4", "spl4");
  e.spl5 = spl_ext(cert, "3.5", "spl5");
  e.spl6 = spl_ext(cert, "3.6", "spl6");
  e.spl7 = spl_ext(cert, "3.7", "spl7");
  e.ucode_spl = spl_ext(cert, "3.8", "ucodeSPL");
  e.fmc_spl = spl_ext(cert, "3.9", "fmcSPL");
  if (auto v = ext_value(cert, "4")) {
    // AMD puts the raw bytes in the extension (no tag). Accept a DER OCTET STRING too, but only when the length is
    // not one of the raw sizes, so that raw bytes that happen to start with 04 xx are never misread.
    if (v->size() == 64 || v->size() == 8) {
      e.hw_id = Bytes(v->begin(), v->end());
    } else if (v->size() >= 2 && (*v)[0] == 0x04 && (*v)[1] == v->size() - 2 && (*v)[1] < 0x80) {
      e.hw_id = Bytes(v->begin() + 2, v->end());
    } else {
      throw ParseError("VEK extension hwID has unexpected length " + std::to_string(v->size()));
    }
  }
  e.csp_id = ia5_ext(cert, "5", "cspID");
  return e;
}

SnpVerdict match_vek_to_report(const VekExtensions& ext, const SnpReport& report, Product product) {
  auto mismatch = [](std::string why) { return SnpVerdict::fail(SnpError::vek_mismatch, std::move(why)); };
  auto kind = ext.kind();
  if (!kind) return mismatch("certificate is neither a VCEK (hwID, no cspID) nor a VLEK (cspID, no hwID)");
  SigningKey sk = report.signing_key();
  if (sk == SigningKey::none) return mismatch("report is not signed (SIGNING_KEY = none)");
  if ((sk == SigningKey::vcek) != (*kind == VekKind::vcek))
    return mismatch(std::string("report signer info says ") + (sk == SigningKey::vcek ? "VCEK" : "VLEK") +
                    " but the certificate is a " + (*kind == VekKind::vcek ? "VCEK" : "VLEK"));
  if (ext.product_name) {
    auto p = product_from_name(*ext.product_name);
    if (!p || *p != product)
      return mismatch("certificate productName \"" + *ext.product_name + "\" is not " +
                      std::string(product_name(product)));
  }
  TcbParts t = decode_tcb(report.reported_tcb, product);
  struct Spl {
    const char* name;
    const std::optional<std::uint32_t>& cert;
    std::uint32_t report;
  };
  const Spl spls[] = {{"blSPL", ext.bl_spl, t.bl},
                      {"teeSPL", ext.tee_spl, t.tee},
                      {"snpSPL", ext.snp_spl, t.snp},
                      {"ucodeSPL", ext.ucode_spl, t.ucode},
                      {"fmcSPL", ext.fmc_spl, t.fmc}};
  for (const auto& s : spls) {
    if (s.cert && *s.cert != s.report)
      return mismatch(std::string("certificate ") + s.name + " " + std::to_string(*s.cert) +
                      " != REPORTED_TCB " + std::to_string(s.report));
  }
  if (!ext.bl_spl || !ext.tee_spl || !ext.snp_spl || !ext.ucode_spl)
    return mismatch("certificate lacks one of blSPL/teeSPL/snpSPL/ucodeSPL");
  if (uses_turin_tcb_layout(product) && !ext.fmc_spl) return mismatch("Turin certificate lacks fmcSPL");
  if (*kind == VekKind::vcek && !report.chip_id_zero()) {
    std::size_t n = uses_turin_tcb_layout(product) ? 8 : 64;
    if (ext.hw_id->size() != n)
      return mismatch("certificate hwID is " + std::to_string(ext.hw_id->size()) + " bytes, expected " +
                      std::to_string(n));
    if (!std::equal(ext.hw_id->begin(), ext.hw_id->end(), report.chip_id.begin()))
      return mismatch("certificate hwID " + hex_encode(ByteView(*ext.hw_id).first(8)) +
                      "... does not match report CHIP_ID " + hex_encode(ByteView(report.chip_id).first(8)) + "...");
  }
  return SnpVerdict::pass();
}

}  // namespace kl::snp
