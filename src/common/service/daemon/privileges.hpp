// Dropping root after the listening sockets are bound: "user[:group]" as upstream's agent writes
// run_as (e.g. keylime:tss), resolved with the system's user database.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

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

// Gives `paths` (recursively, symlinks not followed) to run_as.uid/gid so the service can still write its
// database and read its keys once unprivileged. Only meaningful as root; a no-op otherwise.
void hand_over(const std::vector<std::filesystem::path>& paths, const RunAs& run_as);

// setgroups({gid}) + setgid + setuid (glibc applies them to every thread), then checks root cannot be
// regained. Throws PrivilegeError if not running as root or a step fails.
void drop_privileges(const RunAs& run_as);

}  // namespace kl::daemon
