// Reading inputs and writing outputs with upstream-like error texts ("[Errno 2] No such file or
// directory: 'path'"); "-" and "/dev/stdout" write to standard output.
#pragma once
#include <optional>
#include <string>

namespace kl::tools {

// The whole file, or nullopt with `error` set.
std::optional<std::string> read_file(const std::string& path, std::string& error);
// False with `error` set when the file cannot be written. Files are created 0644 unless `private_file` (0600).
bool write_output(const std::string& path, const std::string& text, std::string& error, bool private_file = false);
bool is_regular_file(const std::string& path);

}  // namespace kl::tools
