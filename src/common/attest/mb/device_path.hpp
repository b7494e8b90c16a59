// UEFI device paths to text, in libefivar's spelling for the node types that boot logs carry and that
// policies or reference-state generation look at: ACPI PciRoot, Pci, HD, File, FvVol, FvFile, Offset,
// Vendor, MAC/IPv4/URI and the end node. Other nodes are written as "Path(type,subtype,hex)" (UEFI spec
// generic form). Never throws: a node whose length is impossible ends the rendering.
#pragma once
#include <string>

#include "common/attest/crypto/bytes.hpp"

namespace kl::mb {

std::string device_path_to_text(ByteView path);

}  // namespace kl::mb
