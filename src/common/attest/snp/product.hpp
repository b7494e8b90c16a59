// AMD EPYC product lines that SEV-SNP evidence can come from. The product selects the KDS path, the pinned
// ARK and the TCB_VERSION byte layout (spec §3.1, §3.4).
#pragma once
#include <optional>
#include <string_view>

namespace kl::snp {

enum class Product { unknown, milan, genoa, turin };

// "Milan", "Genoa", "Turin" (KDS spelling); "unknown".
std::string_view product_name(Product);
// Case-insensitive; accepts KDS names and certificate productName values with a stepping suffix ("Milan-B0").
// Also accepts issuer CNs "SEV-Milan", "ARK-Genoa", "SEV-VLEK-Turin". nullopt for anything else.
std::optional<Product> product_from_name(std::string_view name);

// The Turin TCB layout is used by Turin and later products; Milan/Genoa share the older one.
inline bool uses_turin_tcb_layout(Product p) { return p == Product::turin; }

}  // namespace kl::snp
