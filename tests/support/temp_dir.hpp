// A private temporary directory for one test, removed (recursively) when the owner goes away.
#pragma once
#include <filesystem>

namespace kl::testing {

class TempDir {
 public:
  TempDir();   // mkdtemp under $TMPDIR (or /tmp); throws std::runtime_error on failure
  ~TempDir();  // removes recursively; never throws
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kl::testing
