// The daemon runner's parts in-process: command line, sd_notify datagrams on a real unix socket, run_as
// resolution, the signal loop's watchdog pings and reload hook, JSON / per-agent log lines, alembic check.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <sqlite3.h>

#include "common/service/daemon/command_line.hpp"
#include "common/service/daemon/daemon_runner.hpp"
#include "common/service/daemon/privileges.hpp"
#include "common/service/daemon/sd_notify.hpp"
#include "common/service/log/logging.hpp"
#include "common/service/storage/sqlite_db.hpp"
#include "support/temp_dir.hpp"

using namespace kl;

namespace {

// A bound datagram socket standing in for systemd's notify socket.
class FakeNotifySocket {
 public:
  explicit FakeNotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~FakeNotifySocket() { ::close(fd_); }
  std::optional<std::string> receive() {
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("command line: config, run-as, help, version, errors", "[daemon]") {
  using daemon::parse_command_line;
  auto cl = parse_command_line({"-c", "/x/registrar.conf", "--run-as=keylime:tss"});
  CHECK(cl.config_file == std::filesystem::path("/x/registrar.conf"));
  CHECK(cl.run_as == std::string("keylime:tss"));
  CHECK_FALSE(cl.help);
  CHECK(parse_command_line({"--config=/a"}).config_file == std::filesystem::path("/a"));
  CHECK(parse_command_line({"--run-as", "nobody"}).run_as == std::string("nobody"));
  CHECK(parse_command_line({"--help"}).help);
  CHECK(parse_command_line({"-v"}).version);
  CHECK_THROWS_WITH(parse_command_line({"--bogus"}), Catch::Contains("unknown argument '--bogus'"));
  CHECK_THROWS_WITH(parse_command_line({"-c"}), Catch::Contains("needs a value"));
  CHECK_THROWS_WITH(parse_command_line({"--config="}), Catch::Contains("needs a value"));
}

TEST_CASE("front_door prints help / version and returns the exit code", "[daemon]") {
  daemon::ProgramInfo info{"prog", "Usage: prog\n", "prog 1.0", "notes\n"};
  std::ostringstream out, err;
  int code = -1;
  std::vector<std::string> storage{"prog", "--help"};
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  CHECK_FALSE(daemon::front_door(info, 2, argv.data(), out, err, code));
  CHECK(code == 0);
  CHECK_THAT(out.str(), Catch::StartsWith("Usage: prog") && Catch::Contains("--run-as") && Catch::Contains("notes"));
  storage = {"prog", "--nope"};
  argv.clear();
  for (auto& s : storage) argv.push_back(s.data());
  CHECK_FALSE(daemon::front_door(info, 2, argv.data(), out, err, code));
  CHECK(code == 2);
  CHECK_THAT(err.str(), Catch::StartsWith("prog: unknown argument '--nope'"));
}

TEST_CASE("sd_notify: READY, WATCHDOG, STOPPING datagrams reach NOTIFY_SOCKET", "[daemon]") {
  testing::TempDir t;
  FakeNotifySocket sock(t.path() / "notify");
  daemon::Notifier n({{"NOTIFY_SOCKET", (t.path() / "notify").string()}, {"WATCHDOG_USEC", "500000"}});
  REQUIRE(n.enabled());
  REQUIRE(n.watchdog_period() == std::chrono::microseconds(500000));
  CHECK(n.ready("up"));
  auto m = sock.receive();
  REQUIRE(m);
  CHECK_THAT(*m, Catch::StartsWith("READY=1\n") && Catch::Contains("MAINPID=" + std::to_string(::getpid())) &&
                     Catch::Contains("STATUS=up"));
  CHECK(n.watchdog());
  CHECK(sock.receive() == std::string("WATCHDOG=1"));
  CHECK(n.stopping());
  CHECK(sock.receive() == std::string("STOPPING=1"));
}

TEST_CASE("sd_notify: absent socket is a no-op, WATCHDOG_PID of another process disables the watchdog", "[daemon]") {
  daemon::Notifier none({});
  CHECK_FALSE(none.enabled());
  CHECK_FALSE(none.ready());
  daemon::Notifier other({{"WATCHDOG_USEC", "1000"}, {"WATCHDOG_PID", std::to_string(::getpid() + 1)}});
  CHECK_FALSE(other.watchdog_period());
  daemon::Notifier mine({{"WATCHDOG_USEC", "1000"}, {"WATCHDOG_PID", std::to_string(::getpid())}});
  CHECK(mine.watchdog_period() == std::chrono::microseconds(1000));
  daemon::Notifier bad({{"WATCHDOG_USEC", "abc"}, {"NOTIFY_SOCKET", "relative/path"}});
  CHECK_FALSE(bad.watchdog_period());
  CHECK_FALSE(bad.enabled());
}

TEST_CASE("serve_until_stopped: watchdog pings, SIGHUP runs the reload hook, SIGTERM ends it", "[daemon]") {
  testing::TempDir t;
  FakeNotifySocket sock(t.path() / "notify");
  daemon::ServiceSignals signals;  // blocks the signals in this thread before the helper thread exists
  daemon::Notifier n({{"NOTIFY_SOCKET", (t.path() / "notify").string()}, {"WATCHDOG_USEC", "200000"}});
  std::ostringstream logtext;
  auto log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::ostream_sink_mt>(logtext));
  int reloads = 0;
  daemon::Hooks hooks;
  hooks.reload = [&] { ++reloads; };
  const pid_t self = ::getpid();
  std::vector<std::string> msgs;
  // Read while the loop runs: a unix datagram queue holds only ~10 messages.
  std::thread reader([&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end) {
      auto m = sock.receive();
      if (!m) continue;
      msgs.push_back(m->substr(0, m->find('\n')));
      if (msgs.back() == "STOPPING=1") return;
    }
  });
  std::thread sender([self] {
    std::this_thread::sleep_for(std::chrono::milliseconds(450));
    ::kill(self, SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(self, SIGTERM);
  });
  const int sig = daemon::serve_until_stopped(signals, n, hooks, *log, "ok");
  sender.join();
  reader.join();
  CHECK(sig == SIGTERM);
  CHECK(reloads == 1);
  REQUIRE_FALSE(msgs.empty());
  CHECK(msgs.front() == "READY=1");
  CHECK(std::count(msgs.begin(), msgs.end(), "WATCHDOG=1") >= 3);  // ~750 ms at one ping per 100 ms
  CHECK(std::find(msgs.begin(), msgs.end(), "RELOADING=1") != msgs.end());
  CHECK(std::count(msgs.begin(), msgs.end(), "READY=1") == 2);  // again after the reload
  CHECK(msgs.back() == "STOPPING=1");
  CHECK_THAT(logtext.str(), Catch::Contains("Received SIGHUP") && Catch::Contains("Received SIGTERM"));
}

TEST_CASE("a failing reload hook is logged and the loop keeps running", "[daemon]") {
  daemon::ServiceSignals signals;
  daemon::Notifier n({});
  std::ostringstream logtext;
  spdlog::logger log("t", std::make_shared<spdlog::sinks::ostream_sink_mt>(logtext));
  daemon::Hooks hooks;
  hooks.reload = [] { throw std::runtime_error("cannot load server certificate 'x'"); };
  const pid_t self = ::getpid();
  std::thread sender([self] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(self, SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(self, SIGINT);
  });
  CHECK(daemon::serve_until_stopped(signals, n, hooks, log, "") == SIGINT);
  sender.join();
  CHECK_THAT(logtext.str(), Catch::Contains("Reload failed, keeping the previous settings: cannot load server certificate 'x'"));
}

TEST_CASE("run_as: users and groups resolved, root and unknown names refused", "[daemon]") {
  const auto nobody = daemon::resolve_run_as("nobody");
  CHECK(nobody.uid == 65534);
  CHECK(daemon::resolve_run_as("nobody:0").gid == 0);
  CHECK(daemon::resolve_run_as("12345:54321").uid == 12345);
  CHECK(daemon::resolve_run_as("12345:54321").gid == 54321);
  CHECK_THROWS_WITH(daemon::resolve_run_as("root"), Catch::Contains("names root"));
  CHECK_THROWS_WITH(daemon::resolve_run_as("no-such-user-kl"), Catch::Contains("no such user 'no-such-user-kl'"));
  CHECK_THROWS_WITH(daemon::resolve_run_as("nobody:no-such-group-kl"), Catch::Contains("no such group"));
  CHECK_THROWS_WITH(daemon::resolve_run_as(":tss"), Catch::Contains("no user given"));
  if (::geteuid() != 0) CHECK_THROWS_WITH(daemon::drop_privileges(nobody), Catch::Contains("started as root"));
}

TEST_CASE("logging: upstream text layout, JSON lines with agent context, reconfigure reaches agent loggers", "[daemon][log]") {
  std::ostringstream out;
  auto base = std::make_shared<spdlog::logger>("verifier", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  log::reconfigure(*base, {spdlog::level::info, log::Format::text});
  auto agent = log::with_agent(base, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  base->info("plain line");
  agent->warn("quote failed");
  agent->debug("hidden at INFO");
  std::string text = out.str();
  CHECK_THAT(text, Catch::Matches(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} - verifier - INFO - plain line\n[^\n]*\n)"));
  CHECK_THAT(text, Catch::Contains(" - verifier - WARNING - [agent d432fbb3-d2f1-4a97-9ef7-75bd81c00000] quote failed\n"));
  CHECK_THAT(text, !Catch::Contains("hidden"));

  out.str("");
  log::reconfigure(*base, {spdlog::level::debug, log::Format::json});
  agent->debug("now \"shown\"");
  base->error("no agent");
  std::istringstream lines(out.str());
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  const auto j1 = nlohmann::json::parse(l1), j2 = nlohmann::json::parse(l2);
  CHECK(j1["level"] == "DEBUG");
  CHECK(j1["logger"] == "verifier");
  CHECK(j1["agent_id"] == "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
  CHECK(j1["message"] == "now \"shown\"");
  CHECK_THAT(j1["time"].get<std::string>(), Catch::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
  CHECK(j2["level"] == "ERROR");
  CHECK_FALSE(j2.contains("agent_id"));
}

TEST_CASE("log settings: KEYLIME_LOG_FORMAT beats the config option, bad names are refused", "[daemon][log]") {
  CHECK(log::settings_from({{"KEYLIME_LOG_FORMAT", "json"}}, std::string("text")).format == log::Format::json);
  CHECK(log::settings_from({}, std::string("JSON")).format == log::Format::json);
  CHECK(log::settings_from({}).format == log::Format::text);
  CHECK(log::settings_from({{"KEYLIME_LOG_LEVEL", "debug"}}).level == spdlog::level::debug);
  CHECK_THROWS_WITH(log::parse_format("xml"), Catch::Contains("'xml'"));
  // make_logger survives a bad format (the daemon reports it when it loads its configuration).
  CHECK(log::make_logger("x", {{"KEYLIME_LOG_FORMAT", "xml"}, {"KEYLIME_LOG_LEVEL", "ERROR"}})->level() ==
        spdlog::level::err);
}

TEST_CASE("alembic revision check: head accepted, other revisions refused naming both, nothing written", "[daemon][storage]") {
  testing::TempDir t;
  const auto f = t.path() / "x.sqlite";
  {
    storage::SqliteDb db(f);
    storage::check_alembic_revision(db, "alembic_version_registrar", "a59cc9366774");  // no table: fresh file
    db.exec("CREATE TABLE alembic_version_registrar (version_num VARCHAR(32) NOT NULL)");
    storage::check_alembic_revision(db, "alembic_version_registrar", "a59cc9366774");  // empty table
    db.exec("INSERT INTO alembic_version_registrar VALUES ('a59cc9366774')");
    storage::check_alembic_revision(db, "alembic_version_registrar", "a59cc9366774");
    db.exec("UPDATE alembic_version_registrar SET version_num = '0123456789ab'");
    CHECK_THROWS_WITH(storage::check_alembic_revision(db, "alembic_version_registrar", "a59cc9366774"),
                      Catch::Contains("is at alembic revision 0123456789ab") &&
                          Catch::Contains("supports only revision a59cc9366774"));
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(f.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(raw, "SELECT version_num FROM alembic_version_registrar", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "0123456789ab");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("hand_over gives a state tree to the run_as user (as root), a no-op otherwise", "[daemon]") {
  testing::TempDir t;
  const auto root = t.path() / "kl";
  std::filesystem::create_directories(root / "cv_ca");
  std::ofstream(root / "cv_ca" / "server-private.pem") << "key";
  std::ofstream(root / "cv_data.sqlite") << "db";
  std::filesystem::create_symlink("/etc/passwd", root / "link");
  const auto nobody = daemon::resolve_run_as("nobody");
  daemon::hand_over({root, t.path() / "absent"}, nobody);
  struct stat st {};
  const uid_t want = ::geteuid() == 0 ? nobody.uid : ::geteuid();
  for (const auto& p : {root, root / "cv_ca", root / "cv_ca" / "server-private.pem", root / "cv_data.sqlite"}) {
    INFO(p);
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    CHECK(st.st_uid == want);
  }
  REQUIRE(::stat("/etc/passwd", &st) == 0);
  CHECK(st.st_uid == 0);  // the symlink itself changed hands, not what it points at
}
