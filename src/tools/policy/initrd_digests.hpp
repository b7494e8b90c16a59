// File digests of initrds for `keylime-policy create runtime --ramdisk-dir` (upstream's
// get_initrds_digests / InitrdReader): for each file named "initr*" in the directory, the early
// uncompressed cpio (microcode) is skipped as dracut's skipcpio does, the main archive is
// decompressed by the system tool upstream also uses (zcat, xzcat, zstd, bzcat, lz4, lzop; plain
// cpio as is) and its newc entries are read in memory - nothing is unpacked to disk. Regular files
// (hard links included) get a digest under "/<path in the archive>", spaces replaced by '_'.
#pragma once
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {

// Offset of the "main" archive: 0 unless the data starts with a cpio archive followed by more data.
std::size_t skip_early_cpio(ByteView data);

// Compression name at the start of `data` ("gzip", "xz", "zstd", "bzip2", "lz4", "lzo", "cpio"),
// "" when unknown (then xz is tried, as upstream).
std::string detect_compression(ByteView data);

struct CpioFile {
  std::string path;  // "/usr/bin/foo"
  Bytes data;
};
// Regular files of the first newc/crc archive in `data`. Throws std::invalid_argument for a
// truncated or malformed archive.
std::vector<CpioFile> read_cpio(ByteView data);

// All digests of one initrd file. Throws std::runtime_error when it cannot be read or unpacked.
void add_initrd_digests(const std::string& initrd_file, crypto::HashAlg algorithm, kl::policy::DigestMap& digests,
                        const ToolLog& log);
// Every "initr*" regular file in `dir`.
std::vector<std::string> list_initrds(const std::string& dir);

}  // namespace kl::tools
