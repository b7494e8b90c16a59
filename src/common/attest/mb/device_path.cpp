#include "common/attest/mb/device_path.hpp"

#include <cstdio>

#include "common/attest/mb/parsed.hpp"
#include "common/attest/mb/text_codec.hpp"

namespace kl::mb {
namespace {

using detail::le16;
using detail::le32;
using detail::le64;

std::string hex_num(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// One node's text; `d` is the node body after the 4-byte header.
std::string node_text(std::uint8_t type, std::uint8_t sub, ByteView d) {
  auto generic = [&] {
    return "Path(" + std::to_string(type) + "," + std::to_string(sub) + "," + hex_encode(d) + ")";
  };
  if (type == 0x02 && sub == 0x01 && d.size() >= 8) {  // ACPI
    std::uint32_t hid = le32(d.data()), uid = le32(d.data() + 4);
    if (hid == 0x0a0341d0 || hid == 0x0a0841d0) return "PciRoot(" + hex_num(uid) + ")";
    if (hid == 0x0a0841d0) return "PcieRoot(" + hex_num(uid) + ")";
    return "Acpi(" + hex_num(hid) + "," + hex_num(uid) + ")";
  }
  if (type == 0x01 && sub == 0x01 && d.size() >= 2)  // PCI: function, device
    return "Pci(" + hex_num(d[1]) + "," + hex_num(d[0]) + ")";
  const bool vendor = (type == 0x01 && sub == 0x04) || (type == 0x03 && sub == 0x0a) || (type == 0x04 && sub == 0x03);
  if (vendor && d.size() >= 16) {
    const char* name = type == 0x01 ? "VenHw" : type == 0x03 ? "VenMsg" : "VenMedia";
    std::string s = std::string(name) + "(" + guid_to_string(d);
    if (d.size() > 16) s += "," + hex_encode(d.subspan(16));
    return s + ")";
  }
  if (type == 0x03) {
    if (sub == 0x02 && d.size() >= 4) return "Scsi(" + std::to_string(le16(d.data())) + "," + std::to_string(le16(d.data() + 2)) + ")";
    if (sub == 0x05 && d.size() >= 2) return "USB(" + std::to_string(d[0]) + "," + std::to_string(d[1]) + ")";
    if (sub == 0x12 && d.size() >= 6)
      return "Sata(" + std::to_string(le16(d.data())) + "," + std::to_string(le16(d.data() + 2)) + "," +
             std::to_string(le16(d.data() + 4)) + ")";
    if (sub == 0x17 && d.size() >= 12) {
      std::string eui;
      for (int i = 0; i < 8; ++i) {
        char b[4];
        std::snprintf(b, sizeof b, i ? "-%02X" : "%02X", d[4 + i]);
        eui += b;
      }
      return "NVMe(" + hex_num(le32(d.data())) + "," + eui + ")";
    }
    if (sub == 0x0b && d.size() >= 33) return "MAC(" + hex_encode(d.subspan(0, 6)) + "," + hex_num(d[32]) + ")";
    if (sub == 0x18) return "Uri(" + detail::to_json_text(d) + ")";
  }
  if (type == 0x04) {
    if (sub == 0x01 && d.size() >= 38) {  // hard drive
      std::uint32_t part = le32(d.data());
      std::uint64_t start = le64(d.data() + 4), size = le64(d.data() + 12);
      std::uint8_t fmt = d[36], sig_type = d[37];
      std::string sig;
      if (sig_type == 2) sig = "GPT," + guid_to_string(d.subspan(20, 16));
      else if (sig_type == 1) {
        char b[16];
        std::snprintf(b, sizeof b, "0x%08x", le32(d.data() + 20));
        sig = std::string("MBR,") + b;
      } else sig = std::to_string(fmt) + "," + hex_encode(d.subspan(20, 16));
      return "HD(" + std::to_string(part) + "," + sig + "," + hex_num(start) + "," + hex_num(size) + ")";
    }
    if (sub == 0x04) return "File(" + detail::utf16le_to_utf8(d, d.size() / 2, true) + ")";
    if (sub == 0x06 && d.size() >= 16) return "FvFile(" + guid_to_string(d) + ")";
    if (sub == 0x07 && d.size() >= 16) return "FvVol(" + guid_to_string(d) + ")";
    if (sub == 0x08 && d.size() >= 20)
      return "Offset(" + hex_num(le64(d.data() + 4)) + "," + hex_num(le64(d.data() + 12)) + ")";
  }
  return generic();
}

}  // namespace

std::string device_path_to_text(ByteView path) {
  std::string out;
  std::size_t pos = 0;
  bool need_sep = false;
  while (pos + 4 <= path.size()) {
    std::uint8_t type = path[pos], sub = path[pos + 1];
    std::uint16_t len = le16(path.data() + pos + 2);
    if (len < 4 || pos + len > path.size()) break;  // impossible length: stop, never read past the end
    if (type == 0x7f) {
      if (sub == 0xff) break;
      out += ",";  // end of this instance, another follows
      need_sep = false;
      pos += len;
      continue;
    }
    if (need_sep) out += "/";
    out += node_text(type, sub, path.subspan(pos + 4, len - 4u));
    need_sep = true;
    pos += len;
  }
  return out;
}

}  // namespace kl::mb
