// File digests of a directory tree for `keylime-policy create runtime --rootfs` (upstream's
// get_rootfs_digests/path_digests): regular files only (symlinks, sockets, devices skipped),
// optionally only files owned by uid 0, directories in the exclude set pruned (paths relative to
// the root, e.g. "/var"), plus mount points whose filesystem type differs from that of "/".
// Keys are the paths below the root with spaces replaced by '_' (as IMA logs them).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/attest/crypto/bytes.hpp"
#include "common/attest/crypto/digest.hpp"
#include "common/attest/policy/runtime_policy.hpp"
#include "tools/policy/tool_log.hpp"

namespace kl::tools {

// Upstream BASE_EXCLUDE_DIRS: /sys /run /proc /lost+found /dev /media /snap /mnt /var /tmp.
const std::vector<std::string>& base_exclude_dirs();

struct TreeOptions {
  crypto::HashAlg algorithm = crypto::HashAlg::sha256;
  std::vector<std::string> dirs_to_exclude;  // relative to the root: "/var", "/excluded"
  bool only_owned_by_root = false;
  bool match_rootfs = false;  // also prune mount points of another filesystem type than "/"
  unsigned threads = 0;       // 0: hardware concurrency
};

// Adds the digests of every file under `root` to `digests`. Throws std::invalid_argument when
// `root` is not a directory. Files that cannot be read are skipped (logged at debug level).
void add_tree_digests(const std::string& root, const TreeOptions& options, kl::policy::DigestMap& digests,
                      const ToolLog& log);

// --rootfs with -s/--skip-path (comma-separated directories, ignored unless under the rootfs; the
// whole rootfs is skipped when it lies inside one), base excludes, root-owned files only, mount
// points of other filesystems pruned.
void add_rootfs_digests(const std::string& rootfs, const std::string& skip_path, crypto::HashAlg algorithm,
                        kl::policy::DigestMap& digests, const ToolLog& log);

// Streams a file through the digest. Throws std::runtime_error if it cannot be read.
Bytes file_digest(const std::filesystem::path& file, crypto::HashAlg algorithm);

// Mount points (from /proc/self/mounts) whose filesystem type differs from the one mounted on "/",
// minus those already covered (string prefix) by `already_excluded`.
std::vector<std::string> foreign_mount_points(const std::vector<std::string>& already_excluded);

// os.path.abspath: absolute, lexically normalised, no trailing '/' (except for "/").
std::string absolute_path(const std::string& p);

}  // namespace kl::tools
