// Child processes and TCP ports for integration tests (servers, swtpm) on 127.0.0.1.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kl::testing {

// Binds port 0 on 127.0.0.1 and returns the port the kernel chose (then closes it; a tiny race remains).
std::uint16_t free_tcp_port();
// True once a TCP connect to 127.0.0.1:port succeeds within `timeout`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

// fork/exec of argv[0] (looked up in PATH), environment = ours + extra_env, stdout+stderr appended to log_file.
// The destructor sends SIGTERM, waits up to 5 s, then SIGKILL, and always reaps the child.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> extra_env,
               std::filesystem::path log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();    // false once the child exited (reaps it)
  void terminate();  // SIGTERM, grace period, SIGKILL; reaps
  int wait();        // blocks; exit status (128+signal if killed by a signal)
  std::string log() const;  // contents of log_file

 private:
  void reap(int status);
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = 0;
  std::filesystem::path log_file_;
};

// Runs a command to completion (stdout+stderr captured); returns {exit status, output}.
struct CommandResult { int status = -1; std::string output; };
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& extra_env = {});

// Finds an executable in PATH; empty path if absent.
std::filesystem::path find_executable(const std::string& name);

}  // namespace kl::testing
