#include "tools/policy/initrd_digests.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>

#include "tools/policy/file_io.hpp"

extern char** environ;

namespace kl::tools {
namespace {

constexpr std::size_t kHeaderLen = 110;
constexpr std::size_t kMaxDecompressed = std::size_t(4) << 30;  // a hostile image must not eat all memory

bool is_cpio_magic(ByteView d, std::size_t pos) {
  return pos + 6 <= d.size() && (std::memcmp(d.data() + pos, "070701", 6) == 0 || std::memcmp(d.data() + pos, "070702", 6) == 0);
}

std::size_t align4(std::size_t v) { return (v + 3) & ~std::size_t(3); }

std::optional<std::uint32_t> hex_field(ByteView d, std::size_t pos) {
  if (pos + 8 > d.size()) return std::nullopt;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const char c = static_cast<char>(d[pos + i]);
    int n = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (n < 0) return std::nullopt;
    v = v * 16 + static_cast<std::uint32_t>(n);
  }
  return v;
}

struct Header {
  std::uint32_t ino, mode, nlink, filesize, devmajor, devminor, namesize;
};

std::optional<Header> header_at(ByteView d, std::size_t pos) {
  if (!is_cpio_magic(d, pos) || pos + kHeaderLen > d.size()) return std::nullopt;
  auto f = [&](int i) { return hex_field(d, pos + 6 + 8 * static_cast<std::size_t>(i)); };
  auto ino = f(0), mode = f(1), nlink = f(4), size = f(6), dmaj = f(7), dmin = f(8), ns = f(11);
  if (!ino || !mode || !nlink || !size || !dmaj || !dmin || !ns) return std::nullopt;
  return Header{*ino, *mode, *nlink, *size, *dmaj, *dmin, *ns};
}

// Temporary file holding the compressed data: the decompressor reads it as stdin.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    const char* base = std::getenv("TMPDIR");
    path = std::string(base && *base ? base : "/tmp") + "/keylime-initrd-XXXXXX";
    fd = ::mkstemp(path.data());
    if (fd < 0) throw std::runtime_error("cannot create a temporary file");
  }
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
};

Bytes run_decompressor(const std::vector<std::string>& argv, ByteView input) {
  TempFile tmp;
  for (std::size_t off = 0; off < input.size();) {
    ssize_t n = ::write(tmp.fd, input.data() + off, input.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("cannot write a temporary file");
    }
    off += static_cast<std::size_t>(n);
  }
  ::lseek(tmp.fd, 0, SEEK_SET);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, tmp.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    throw std::runtime_error("Unable to move forward; '" + argv[0] + "' not available in the path");
  }
  Bytes result;
  unsigned char buf[65536];
  bool too_big = false;
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.size() + static_cast<std::size_t>(n) > kMaxDecompressed) {
      too_big = true;
      break;
    }
    result.insert(result.end(), buf, buf + n);
  }
  ::close(out[0]);
  int status = 0;
  if (too_big) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (too_big) throw std::runtime_error("decompressed initrd is larger than 4 GiB");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("'" + argv[0] + "' failed");
  return result;
}

// "./usr/bin/foo" -> "/usr/bin/foo"; nullopt for the archive root or a name leaving it.
std::optional<std::string> archive_path(const std::string& name) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= name.size()) {
    std::size_t slash = name.find('/', pos);
    std::string part = name.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? name.size() + 1 : slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out += "/" + part;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::size_t skip_early_cpio(ByteView d) {
  if (!is_cpio_magic(d, 0)) return 0;
  std::size_t pos = 0;
  for (;;) {
    auto h = header_at(d, pos);
    if (!h) return pos;  // corrupt: start here, as upstream
    const std::size_t name_end = pos + kHeaderLen + h->namesize;
    const bool trailer = h->namesize == 11 && name_end <= d.size() &&
                         std::memcmp(d.data() + pos + kHeaderLen, "TRAILER!!!", 10) == 0;
    pos = align4(align4(name_end) + h->filesize);
    if (trailer) break;
    if (pos >= d.size()) return pos;
  }
  while (pos < d.size() && d[pos] == 0) ++pos;
  return pos >= d.size() ? 0 : pos;  // nothing after the first archive: it is the main one
}

std::string detect_compression(ByteView d) {
  auto starts = [&](std::initializer_list<unsigned char> m) {
    return d.size() >= m.size() && std::equal(m.begin(), m.end(), d.begin());
  };
  if (starts({0x1f, 0x8b})) return "gzip";
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return "xz";
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return "zstd";
  if (starts({'B', 'Z', 'h'})) return "bzip2";
  if (starts({0x04, 0x22, 0x4d, 0x18})) return "lz4";
  if (starts({0x89, 'L', 'Z', 'O', 0x00, 0x0d})) return "lzo";
  if (is_cpio_magic(d, 0)) return "cpio";
  return "";
}

std::vector<CpioFile> read_cpio(ByteView d) {
  std::vector<CpioFile> files;
  // Hard links: newc stores the data with the last link only; every link gets it.
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>, std::vector<std::size_t>> links;
  std::size_t pos = 0;
  for (;;) {
    auto h = header_at(d, pos);
    if (!h) throw std::invalid_argument("malformed cpio archive at offset " + std::to_string(pos));
    const std::size_t name_at = pos + kHeaderLen;
    if (h->namesize == 0 || name_at + h->namesize > d.size())
      throw std::invalid_argument("truncated cpio archive at offset " + std::to_string(pos));
    std::string name(reinterpret_cast<const char*>(d.data() + name_at), h->namesize - 1);
    const std::size_t data_at = align4(name_at + h->namesize);
    if (name == "TRAILER!!!") break;
    if (data_at + h->filesize > d.size())
      throw std::invalid_argument("truncated cpio archive in '" + name + "'");
    if ((h->mode & 0170000) == 0100000) {
      if (auto path = archive_path(name)) {
        files.push_back({*path, Bytes(d.begin() + static_cast<std::ptrdiff_t>(data_at),
                                      d.begin() + static_cast<std::ptrdiff_t>(data_at + h->filesize))});
        if (h->nlink > 1) links[{h->devmajor, h->devminor, h->ino}].push_back(files.size() - 1);
      }
    }
    pos = align4(data_at + h->filesize);
  }
  for (const auto& [id, idx] : links) {
    const Bytes* data = nullptr;
    for (auto i : idx)
      if (!files[i].data.empty()) data = &files[i].data;
    if (data)
      for (auto i : idx)
        if (files[i].data.empty()) files[i].data = *data;
  }
  return files;
}

std::vector<std::string> list_initrds(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) throw std::runtime_error("cannot read directory '" + dir + "'");
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name.rfind("initr", 0) != 0) continue;
    std::string path = dir + "/" + name;
    if (is_regular_file(path)) out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void add_initrd_digests(const std::string& initrd_file, crypto::HashAlg algorithm, kl::policy::DigestMap& digests,
                        const ToolLog& log) {
  std::string err;
  auto text = read_file(initrd_file, err);
  if (!text) throw std::runtime_error("Specified initrd file '" + initrd_file + "' cannot be read: " + err);
  const ByteView all = as_bytes(*text);
  const std::size_t offset = skip_early_cpio(all);
  const ByteView main = all.subspan(offset);
  const std::string kind = detect_compression(main);
  log.debug("initrd " + initrd_file + ": main archive at offset " + std::to_string(offset) + ", format " +
            (kind.empty() ? "unknown (trying xz)" : kind));
  Bytes decompressed;
  ByteView archive = main;
  if (kind != "cpio") {
    static const std::map<std::string, std::vector<std::string>> kTools = {
        {"gzip", {"zcat", "--"}},     {"xz", {"xzcat", "--"}},    {"", {"xzcat", "--"}},
        {"zstd", {"zstd", "-d", "-c"}}, {"bzip2", {"bzcat", "--"}}, {"lz4", {"lz4", "-d", "-c"}},
        {"lzo", {"lzop", "-d", "-c"}}};
    try {
      decompressed = run_decompressor(kTools.at(kind), main);
    } catch (const std::exception& e) {
      throw std::runtime_error("Unable to process file '" + initrd_file + "' at offset " + std::to_string(offset) +
                               ": " + e.what());
    }
    archive = decompressed;
  }
  std::vector<CpioFile> files;
  try {
    files = read_cpio(archive);
  } catch (const std::exception& e) {
    throw std::runtime_error("Unable to process cpio archive from file '" + initrd_file + "' at offset " +
                             std::to_string(offset) + ": " + e.what());
  }
  for (auto& f : files) {
    std::replace(f.path.begin(), f.path.end(), ' ', '_');
    digests[f.path].push_back(hex_encode(crypto::digest(algorithm, f.data)));
  }
}

}  // namespace kl::tools
