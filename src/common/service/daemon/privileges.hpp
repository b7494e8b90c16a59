// Dropping root after the listening sockets are bound: "user[:group]" as upstream's agent writes
// run_as (e.g. keylime:tss), resolved with the system's user database.
#pragma once
#include <sys/types.h>

#include <optional>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace kl::daemon {

struct PrivilegeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RunAs {
  std::string user, group;  // as written; group empty = the user's primary group
  uid_t uid = 0;
  gid_t gid = 0;
};

// Resolves "user" or "user:group" (names or numeric ids). Throws PrivilegeError naming what is unknown.
RunAs resolve_run_as(const std::string& spec);

// What a daemon drops to after binding: nothing without a spec; the resolved user when started as root; nothing
// (and a warning in `log`) otherwise. Throws PrivilegeError for a spec that does not resolve.
std::optional<RunAs> run_as_at_start(const std::optional<std::string>& spec, spdlog::logger& log);

// Gives `paths` (recursively, symlinks not followed) to run_as.uid/gid so the service can still write its
// database and read its keys once unprivileged. Only meaningful as root; a no-op otherwise.
void hand_over(const std::vector<std::filesystem::path>& paths, const RunAs& run_as);

// setgroups({gid}) + setgid + setuid (glibc applies them to every thread), then checks root cannot be
// regained. Throws PrivilegeError if not running as root or a step fails.
void drop_privileges(const RunAs& run_as);

}  // namespace kl::daemon
