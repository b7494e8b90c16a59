#include "common/service/daemon/privileges.hpp"

#include <spdlog/spdlog.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace kl::daemon {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

RunAs resolve_run_as(const std::string& spec) {
  RunAs r;
  const auto colon = spec.find(':');
  r.user = spec.substr(0, colon);
  if (colon != std::string::npos) r.group = spec.substr(colon + 1);
  if (r.user.empty()) throw PrivilegeError("run_as '" + spec + "': no user given (expected user[:group])");

  std::vector<char> buf(16384);
  passwd pw{};
  passwd* pwr = nullptr;
  if (all_digits(r.user))
    getpwuid_r(static_cast<uid_t>(std::stoul(r.user)), &pw, buf.data(), buf.size(), &pwr);
  else
    getpwnam_r(r.user.c_str(), &pw, buf.data(), buf.size(), &pwr);
  if (pwr == nullptr) {
    if (!all_digits(r.user)) throw PrivilegeError("run_as '" + spec + "': no such user '" + r.user + "'");
    r.uid = static_cast<uid_t>(std::stoul(r.user));
    r.gid = static_cast<gid_t>(r.uid);
  } else {
    r.uid = pw.pw_uid;
    r.gid = pw.pw_gid;
  }
  if (!r.group.empty()) {
    group gr{};
    group* grr = nullptr;
    if (all_digits(r.group)) {
      r.gid = static_cast<gid_t>(std::stoul(r.group));
    } else {
      getgrnam_r(r.group.c_str(), &gr, buf.data(), buf.size(), &grr);
      if (grr == nullptr) throw PrivilegeError("run_as '" + spec + "': no such group '" + r.group + "'");
      r.gid = gr.gr_gid;
    }
  }
  if (r.uid == 0) throw PrivilegeError("run_as '" + spec + "' names root; give an unprivileged user");
  return r;
}

std::optional<RunAs> run_as_at_start(const std::optional<std::string>& spec, spdlog::logger& log) {
  if (!spec) return std::nullopt;
  RunAs r = resolve_run_as(*spec);
  if (::geteuid() != 0) {
    log.warn("run_as = {} ignored: not started as root", *spec);
    return std::nullopt;
  }
  return r;
}

void hand_over(const std::vector<std::filesystem::path>& paths, const RunAs& run_as) {
  if (::geteuid() != 0) return;
  namespace fs = std::filesystem;
  auto give = [&](const fs::path& p) {
    if (::lchown(p.c_str(), run_as.uid, run_as.gid) != 0)
      throw PrivilegeError("cannot give " + p.string() + " to " + run_as.user + ": " + errno_text());
  };
  for (const auto& root : paths) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(root, ec))) continue;
    give(root);
    if (!fs::is_directory(fs::symlink_status(root, ec))) continue;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      give(it->path());
  }
}

void drop_privileges(const RunAs& run_as) {
  if (::geteuid() != 0) throw PrivilegeError("run_as " + run_as.user + " needs the service to be started as root");
  const gid_t groups[] = {run_as.gid};
  if (::setgroups(1, groups) != 0) throw PrivilegeError("setgroups failed: " + errno_text());
  if (::setgid(run_as.gid) != 0) throw PrivilegeError("setgid(" + std::to_string(run_as.gid) + ") failed: " + errno_text());
  if (::setuid(run_as.uid) != 0) throw PrivilegeError("setuid(" + std::to_string(run_as.uid) + ") failed: " + errno_text());
  // A setuid that left a way back to root (saved set-user-ID) would make the drop pointless.
  if (::setuid(0) == 0 || ::geteuid() == 0)
    throw PrivilegeError("still able to regain root after switching to " + run_as.user);
}

}  // namespace kl::daemon
