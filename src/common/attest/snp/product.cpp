#include "common/attest/snp/product.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace kl::snp {

std::string_view product_name(Product p) {
  switch (p) {
    case Product::milan: return "Milan";
    case Product::genoa: return "Genoa";
    case Product::turin: return "Turin";
    case Product::unknown: break;
  }
  return "unknown";
}

std::optional<Product> product_from_name(std::string_view name) {
  std::string s(name);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view prefix : {"sev-vlek-", "sev-", "ark-"}) {
    if (s.rfind(prefix, 0) == 0) {
      s.erase(0, prefix.size());
      break;
    }
  }
  // Certificates carry a stepping suffix ("Milan-B0"); the product is what precedes it.
  if (auto dash = s.find('-'); dash != std::string::npos) s.erase(dash);
  if (s == "milan") return Product::milan;
  if (s == "genoa") return Product::genoa;
  if (s == "turin") return Product::turin;
  return std::nullopt;
}

}  // namespace kl::snp
