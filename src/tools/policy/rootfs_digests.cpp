#include "tools/policy/rootfs_digests.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <memory>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/attest/crypto/ossl.hpp"

namespace kl::tools {
namespace {

// /proc/self/mounts escapes space, tab, newline and backslash as octal.
std::string unescape_mount_field(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) && std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct DirCloser {
  void operator()(DIR* d) const noexcept { closedir(d); }
};

void collect_files(const std::string& dir, const std::string& prefix, const TreeOptions& opt,
                   std::vector<std::string>& files, const ToolLog& log) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) {
    log.debug("Could not read directory '" + dir + "', skipping");
    return;
  }
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir == "/" ? "/" + name : dir + "/" + name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) {
      log.debug("Could not find '" + path + "', skipping");
      continue;
    }
    if (S_ISLNK(st.st_mode)) continue;
    if (S_ISREG(st.st_mode)) {
      if (opt.only_owned_by_root && st.st_uid != 0) continue;
      files.push_back(path);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      std::string rel = path;
      if (prefix != "/" && rel.rfind(prefix, 0) == 0) rel = rel.substr(prefix.size());
      if (std::find(opt.dirs_to_exclude.begin(), opt.dirs_to_exclude.end(), rel) != opt.dirs_to_exclude.end()) {
        log.debug("Skipping '" + path + "' that matches a directory path to exclude");
        continue;
      }
      subdirs.push_back(path);
    }
  }
  d.reset();
  for (const auto& s : subdirs) collect_files(s, prefix, opt, files, log);
}

bool is_relative_to(const std::string& path, const std::string& base) {
  if (base == "/") return !path.empty() && path[0] == '/';
  return path == base || (path.size() > base.size() && path.rfind(base, 0) == 0 && path[base.size()] == '/');
}

}  // namespace

const std::vector<std::string>& base_exclude_dirs() {
  static const std::vector<std::string> dirs = {"/sys", "/run", "/proc", "/lost+found", "/dev",
                                                "/media", "/snap", "/mnt", "/var", "/tmp"};
  return dirs;
}

std::string absolute_path(const std::string& p) {
  std::string s = std::filesystem::absolute(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Bytes file_digest(const std::filesystem::path& file, crypto::HashAlg algorithm) {
  const EVP_MD* md = crypto::evp_md(algorithm);
  if (!md) throw std::runtime_error("digest algorithm not available in OpenSSL");
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw std::runtime_error("cannot open " + file.string());
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    ::close(fd);
    throw std::runtime_error("digest init failed");
  }
  std::vector<unsigned char> buf(1 << 16);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error("cannot read " + file.string());
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  Bytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out.data(), &len);
  out.resize(len);
  return out;
}

std::vector<std::string> foreign_mount_points(const std::vector<std::string>& already_excluded) {
  std::ifstream f("/proc/self/mounts");
  std::vector<std::pair<std::string, std::string>> mounts;  // mount point, fstype
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string dev, mp, type;
    if (ls >> dev >> mp >> type) mounts.emplace_back(unescape_mount_field(mp), type);
  }
  std::string root_type;
  bool have_root = false;
  for (const auto& [mp, type] : mounts)
    if (mp == "/") {
      root_type = type;
      have_root = true;
      break;
    }
  std::vector<std::string> out;
  for (const auto& [mp, type] : mounts) {
    if (have_root && type == root_type) continue;
    bool covered = false;
    for (const auto& cur : already_excluded)
      if (mp.rfind(cur, 0) == 0) covered = true;
    if (!covered && std::find(out.begin(), out.end(), mp) == out.end()) out.push_back(mp);
  }
  return out;
}

void add_tree_digests(const std::string& root, const TreeOptions& options, kl::policy::DigestMap& digests,
                      const ToolLog& log) {
  const std::string abs = absolute_path(root);
  struct stat st {};
  if (stat(abs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::invalid_argument("Invalid path, " + abs + " is not a directory");
  TreeOptions opt = options;
  if (opt.match_rootfs) {
    auto extra = foreign_mount_points(opt.dirs_to_exclude);
    opt.dirs_to_exclude.insert(opt.dirs_to_exclude.end(), extra.begin(), extra.end());
  }
  std::vector<std::string> files;
  collect_files(abs, abs, opt, files, log);
  log.debug("obtained " + std::to_string(files.size()) + " paths");

  std::vector<std::string> hexes(files.size());
  std::vector<char> ok(files.size(), 0);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++) {
      try {
        hexes[i] = hex_encode(file_digest(files[i], opt.algorithm));
        ok[i] = 1;
      } catch (const std::exception&) {
      }
    }
  };
  unsigned n = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  n = static_cast<unsigned>(std::min<std::size_t>(n, std::max<std::size_t>(1, files.size())));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!ok[i]) {
      log.debug("Failed to calculate a digest of '" + files[i] + "'");
      continue;
    }
    std::string key = files[i];
    if (abs != "/") key = key.substr(abs.size());
    std::replace(key.begin(), key.end(), ' ', '_');
    digests[key].push_back(hexes[i]);
  }
}

void add_rootfs_digests(const std::string& rootfs, const std::string& skip_path, crypto::HashAlg algorithm,
                        kl::policy::DigestMap& digests, const ToolLog& log) {
  const std::string abs_rootfs = absolute_path(rootfs);
  TreeOptions opt;
  opt.algorithm = algorithm;
  opt.only_owned_by_root = true;
  opt.match_rootfs = true;
  if (!skip_path.empty()) {
    std::size_t pos = 0;
    while (pos <= skip_path.size()) {
      std::size_t comma = skip_path.find(',', pos);
      std::string d = skip_path.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pos = comma == std::string::npos ? skip_path.size() + 1 : comma + 1;
      if (d.empty()) continue;
      const std::string abs_d = absolute_path(d);
      if (is_relative_to(abs_rootfs, abs_d)) {
        log.debug("The rootfs " + abs_rootfs + " is excluded because it matches or is within " + abs_d);
        return;
      }
      if (!is_relative_to(abs_d, abs_rootfs)) {
        log.warning("Ignoring directory '" + d + "' that should be skipped, but it is not under '" + rootfs + "'");
        continue;
      }
      // Relative to the rootfs, like the other excluded directories ("/" keeps the absolute path).
      opt.dirs_to_exclude.push_back(abs_rootfs == "/" ? abs_d : abs_d.substr(abs_rootfs.size()));
    }
  }
  const auto& base = base_exclude_dirs();
  opt.dirs_to_exclude.insert(opt.dirs_to_exclude.end(), base.begin(), base.end());
  add_tree_digests(rootfs, opt, digests, log);
}

}  // namespace kl::tools
