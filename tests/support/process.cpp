#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kl::testing {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Everything the child needs is prepared before fork(): after fork only async-signal-safe calls are made.
struct ExecPlan {
  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, env;
  std::string exe;

  ExecPlan(const std::vector<std::string>& args, const std::map<std::string, std::string>& extra) : argv_s(args) {
    if (args.empty()) throw std::invalid_argument("ChildProcess: empty argv");
    exe = args[0];
    if (exe.find('/') == std::string::npos) {
      auto found = find_executable(exe);
      if (found.empty()) throw std::runtime_error("executable not found in PATH: " + exe);
      exe = found.string();
    }
    for (char** e = environ; e && *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos && extra.count(kv.substr(0, eq))) continue;  // overridden below
      env_s.push_back(std::move(kv));
    }
    for (const auto& [k, v] : extra) env_s.push_back(k + "=" + v);
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) env.push_back(s.data());
    env.push_back(nullptr);
  }
};

// Forks and execs with stdout+stderr on out_fd and stdin from /dev/null. Returns the child's pid.
pid_t spawn(ExecPlan& plan, int out_fd) {
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    if (devnull >= 0) ::close(devnull);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Own process group, so that a signal to the test runner's group does not depend on us and
    // terminate() can reach grandchildren.
    ::setpgid(0, 0);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::execve(plan.exe.c_str(), plan.argv.data(), plan.env.data());
    const char msg[] = "execve failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  return pid;
}

}  // namespace

std::filesystem::path find_executable(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::filesystem::path p = std::filesystem::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

std::uint16_t free_tcp_port() {
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) throw std::runtime_error("socket() failed");
  auto addr = loopback(0);
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error(std::string("bind(127.0.0.1:0) failed: ") + std::strerror(errno));
  socklen_t len = sizeof addr;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) throw std::runtime_error("getsockname failed");
  return ntohs(addr.sin_port);
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    auto addr = loopback(port);
    if (s.fd >= 0 && ::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> extra_env,
                           std::filesystem::path log_file)
    : log_file_(std::move(log_file)) {
  ExecPlan plan(argv, extra_env);
  Fd out{::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)};
  if (out.fd < 0) throw std::runtime_error("cannot open log file " + log_file_.string());
  pid_ = spawn(plan, out.fd);
}

ChildProcess::~ChildProcess() { terminate(); }

void ChildProcess::reap(int status) {
  exited_ = true;
  exit_status_ = decode_status(status);
}

bool ChildProcess::running() {
  if (exited_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) reap(status);
  return !exited_;
}

void ChildProcess::terminate() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  wait();
}

int ChildProcess::wait() {
  if (exited_ || pid_ <= 0) return exit_status_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) { exited_ = true; exit_status_ = -1; return exit_status_; }
  }
  reap(status);
  return exit_status_;
}

std::string ChildProcess::log() const {
  std::ifstream in(log_file_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_command(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env) {
  ExecPlan plan(argv, extra_env);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Fd rd{fds[0]};
  pid_t pid;
  {
    Fd wr{fds[1]};
    pid = spawn(plan, wr.fd);
  }  // our copy of the write end closes here, so read() sees EOF when the child exits
  CommandResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.fd, buf, sizeof buf);
    if (n > 0) { result.output.append(buf, static_cast<std::size_t>(n)); continue; }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  result.status = decode_status(status);
  return result;
}

}  // namespace kl::testing
