// Operations, with the real binaries: --help, sd_notify readiness and watchdog on a fake NOTIFY_SOCKET,
// SIGTERM drain (exit 0, database consistent), SIGHUP reload (log level, server certificate), run_as,
// upgrade from upstream's databases (agents kept and resumed, other alembic revisions refused), and
// `systemd-analyze verify` on the units.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "common/service/http/client.hpp"
#include "common/service/tls/tls_dir.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kSampleAgent = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000";
const std::string kHead = "a59cc9366774";

fs::path binary(const std::string& name) { return fs::path(KL_BINARY_DIR) / name; }
fs::path source(const std::string& rel) { return fs::path(KL_SOURCE_DIR) / rel; }
fs::path sample_db(const std::string& name) { return fs::path(KL_TESTDATA_DIR) / "keylime-db" / name; }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

template <class F>
bool eventually(F&& pred, std::chrono::milliseconds timeout = 20s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// One SQL query's rows, columns joined with '|', read-only.
std::vector<std::string> query(const fs::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> rows;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + db_file.string());
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    const std::string err = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(sql + ": " + err);
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row += std::string(i ? "|" : "") + (t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

void exec_sql(const fs::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

// A bound datagram socket standing in for systemd's notify socket.
class FakeNotifySocket {
 public:
  explicit FakeNotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~FakeNotifySocket() { ::close(fd_); }
  const fs::path& path() const { return path_; }
  // Collects messages (first line of each) until `until` has been seen or the timeout passes.
  std::vector<std::string> collect(const std::function<bool(const std::vector<std::string>&)>& until,
                                   std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end && !until(got_)) {
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        std::string m(buf, static_cast<std::size_t>(n));
        std::istringstream lines(m);
        for (std::string l; std::getline(lines, l);) got_.push_back(l);
      }
    }
    return got_;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::vector<std::string> got_;
};

std::size_t count(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), s));
}

// A service process on a temp KEYLIME_DIR, configured by the shipped template (config/<comp>.conf) plus
// environment overrides, as an operator would run it.
struct Service {
  kl::testing::TempDir dir;
  std::string comp;  // registrar | verifier
  std::uint16_t port = kl::testing::free_tcp_port();
  std::uint16_t tls_port = kl::testing::free_tcp_port();
  std::map<std::string, std::string> env;
  std::unique_ptr<kl::testing::ChildProcess> proc;

  explicit Service(std::string c) : comp(std::move(c)) {
    while (tls_port == port) tls_port = kl::testing::free_tcp_port();
    fs::create_directories(kl_dir());
    fs::create_directories(dir.path() / "tpm_cert_store");
    std::ofstream(dir.path() / "tenant.conf") << "[tenant]\ntpm_cert_store = " << (dir.path() / "tpm_cert_store").string() << "\n";
    std::ofstream(dir.path() / "logging.conf") << "[logger_keylime]\nlevel = INFO\n";
    const std::string P = "KEYLIME_" + std::string(comp == "registrar" ? "REGISTRAR" : "VERIFIER") + "_";
    env = {{"KEYLIME_DIR", kl_dir().string()},
           {"KEYLIME_TENANT_CONFIG", (dir.path() / "tenant.conf").string()},
           {"KEYLIME_LOGGING_CONFIG", (dir.path() / "logging.conf").string()},
           {P + "PORT", std::to_string(port)},
           {P + "TLS_DIR", "generate"}};
    if (comp == "registrar") {
      env[P + "TLS_PORT"] = std::to_string(tls_port);
      env[P + "EK_CERT_CHAIN_CHECK"] = "off";
    } else {
      env[P + "QUOTE_INTERVAL"] = "0.5";
      env[P + "RETRY_INTERVAL"] = "0.2";
      env[P + "MAX_RETRIES"] = "2";
      env[P + "EXPONENTIAL_BACKOFF"] = "False";
      env[P + "REQUEST_TIMEOUT"] = "2";
    }
  }
  fs::path kl_dir() const { return dir.path() / "kl"; }
  fs::path tls_dir() const { return kl_dir() / (comp == "registrar" ? "reg_ca" : "cv_ca"); }
  fs::path db() const { return kl_dir() / (comp == "registrar" ? "reg_data.sqlite" : "cv_data.sqlite"); }
  std::uint16_t admin_port() const { return comp == "registrar" ? tls_port : port; }
  std::vector<std::string> argv(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a{binary("keylime_" + comp).string(), "-c", source("config/" + comp + ".conf").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void start(const std::vector<std::string>& extra = {}, std::map<std::string, std::string> more_env = {}) {
    auto e = env;
    for (auto& [k, v] : more_env) e[k] = v;
    proc = std::make_unique<kl::testing::ChildProcess>(argv(extra), e, dir.path() / (comp + ".log"));
    if (!kl::testing::wait_for_port(admin_port(), 20s)) throw std::runtime_error(comp + " did not start:\n" + proc->log());
  }
  kl::testing::CommandResult run_to_exit() const { return kl::testing::run_command(argv(), env); }
  std::string log() const { return proc ? proc->log() : std::string(); }
  kl::http::Client admin(const std::string& server_ca = "") const {
    kl::http::TlsClientConfig t;
    t.cert_file = (tls_dir() / "client-cert.crt").string();
    t.key_file = (tls_dir() / "client-private.pem").string();
    t.ca_files = {server_ca.empty() ? (tls_dir() / "cacert.crt").string() : server_ca};
    return kl::http::Client("127.0.0.1", admin_port(), kl::http::ClientOptions{t, 5000ms});
  }
};

bool answers(kl::http::Client&& c) {
  try {
    return c.request("GET", "/version").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

TEST_CASE("--help and --version on every binary, a bad argument exits 2", "[ops]") {
  std::vector<std::string> bins{"keylime_registrar", "keylime_verifier"};
  if (fs::exists(binary("keylime-policy"))) bins.push_back("keylime-policy");
  for (const auto& b : bins) {
    INFO(b);
    auto r = kl::testing::run_command({binary(b).string(), "--help"});
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("sage"));
  }
  for (const std::string b : {"keylime_registrar", "keylime_verifier"}) {
    auto r = kl::testing::run_command({binary(b).string(), "--help"});
    CHECK_THAT(r.output, Catch::Contains("--run-as") && Catch::Contains("SIGHUP") && Catch::Contains("KEYLIME_LOG_FORMAT"));
    r = kl::testing::run_command({binary(b).string(), "--version"});
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::StartsWith(b + " "));
    r = kl::testing::run_command({binary(b).string(), "--frobnicate"});
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::StartsWith(b + ": unknown argument '--frobnicate'"));
  }
}

TEST_CASE("sd_notify: both daemons send READY=1 once listening, then WATCHDOG=1 pings, STOPPING=1 on SIGTERM", "[ops]") {
  for (const std::string comp : {"registrar", "verifier"}) {
    INFO(comp);
    Service s(comp);
    FakeNotifySocket sock(s.dir.path() / "notify.sock");
    s.start({}, {{"NOTIFY_SOCKET", sock.path().string()}, {"WATCHDOG_USEC", "400000"}});
    auto msgs = sock.collect([](const auto& m) { return count(m, "READY=1") >= 1 && count(m, "WATCHDOG=1") >= 3; }, 10s);
    INFO(s.log());
    REQUIRE(count(msgs, "READY=1") == 1);
    CHECK(count(msgs, "WATCHDOG=1") >= 3);
    CHECK(std::find(msgs.begin(), msgs.end(), "MAINPID=" + std::to_string(s.proc->pid())) != msgs.end());
    // READY came after the port was bound: the service answers.
    CHECK(answers(s.admin()));
    ::kill(s.proc->pid(), SIGTERM);
    CHECK(s.proc->wait() == 0);
    msgs = sock.collect([](const auto& m) { return count(m, "STOPPING=1") >= 1; }, 5s);
    CHECK(count(msgs, "STOPPING=1") == 1);
  }
}

TEST_CASE("SIGTERM while registrations are in flight: exit 0, every answered registration committed, DB intact", "[ops]") {
  Service s("registrar");
  s.start();
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> registered, activated;
  auto worker = [&](int w) {
    for (int i = 0; !stop; ++i) {
      kl::testing::SoftwareAgent agent;
      kl::testing::RegisterOptions o;
      o.agent_id = "term-" + std::to_string(w) + "-" + std::to_string(i);
      try {
        kl::http::Client c("127.0.0.1", s.port);
        auto out = kl::testing::register_and_activate(c, agent, o);
        std::lock_guard lk(mu);
        if (out.register_status == 200) registered.push_back(o.agent_id);
        if (out.ok()) activated.push_back(o.agent_id);
      } catch (const std::exception&) {
        return;  // the server went away
      }
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) workers.emplace_back(worker, w);
  REQUIRE(eventually([&] {
    std::lock_guard lk(mu);
    return activated.size() >= 5;
  }));
  ::kill(s.proc->pid(), SIGTERM);
  const int status = s.proc->wait();
  stop = true;
  for (auto& t : workers) t.join();
  INFO(s.log());
  CHECK(status == 0);
  CHECK_THAT(s.log(), Catch::Contains("Received SIGTERM, shutting down") && Catch::Contains("Registrar stopped"));
  CHECK(query(s.db(), "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
  // Every registration we were told succeeded is stored, every activation we were told succeeded is active.
  for (const auto& id : registered) CHECK(query(s.db(), "SELECT 1 FROM registrarmain WHERE agent_id = '" + id + "'").size() == 1);
  for (const auto& id : activated)
    CHECK(query(s.db(), "SELECT active FROM registrarmain WHERE agent_id = '" + id + "'") == std::vector<std::string>{"1"});
  CHECK(query(s.db(), "SELECT version_num FROM alembic_version_registrar") == std::vector<std::string>{kHead});
}

TEST_CASE("SIGHUP: log level and server certificate re-read, agents kept, service keeps answering", "[ops]") {
  Service s("registrar");
  s.start();
  kl::http::Client plain("127.0.0.1", s.port);
  kl::testing::SoftwareAgent a1, a2;
  kl::testing::RegisterOptions o1, o2;
  o1.agent_id = "hup-agent-1";
  o2.agent_id = "hup-agent-2";
  REQUIRE(kl::testing::register_and_activate(plain, a1, o1).ok());
  CHECK_THAT(s.log(), !Catch::Contains(" - DEBUG - "));

  // New server certificate from a different CA, written over the old files; the client CA is unchanged.
  kl::testing::TempDir other;
  const auto issued = kl::tls::make_ca_and_leaf(other.path(), "new", "127.0.0.1", {"127.0.0.1"});
  fs::copy_file(issued.cert, s.tls_dir() / "server-cert.crt", fs::copy_options::overwrite_existing);
  fs::copy_file(issued.key, s.tls_dir() / "server-private.pem", fs::copy_options::overwrite_existing);
  CHECK_FALSE(answers(s.admin(issued.ca_cert.string())));  // still the old certificate
  std::ofstream(s.dir.path() / "logging.conf") << "[logger_keylime]\nlevel = DEBUG\n";

  ::kill(s.proc->pid(), SIGHUP);
  REQUIRE(eventually([&] { return s.log().find("Reload complete") != std::string::npos; }, 10s));
  INFO(s.log());
  CHECK_THAT(s.log(), Catch::Contains("Log level debug"));
  const auto loaded = s.log().find("Loaded 0 CA certificates from tpm_cert_store");
  REQUIRE(loaded != std::string::npos);
  CHECK(s.log().find("Loaded 0 CA certificates from tpm_cert_store", loaded + 1) != std::string::npos);  // re-read
  REQUIRE(s.proc->running());
  CHECK(answers(s.admin(issued.ca_cert.string())));  // the new certificate is served
  CHECK_FALSE(answers(s.admin()));                      // and the old one no longer
  auto admin = s.admin(issued.ca_cert.string());
  auto list = admin.request("GET", "/v2.6/agents");
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body)["results"]["uuids"] == json::array({o1.agent_id}));
  REQUIRE(kl::testing::register_and_activate(plain, a2, o2).ok());
  CHECK_THAT(s.log(), Catch::Contains(" - registrar - DEBUG - Agent 'hup-agent-2' registered"));

  // A bad certificate on reload: refused, the working one stays.
  std::ofstream(s.tls_dir() / "server-cert.crt") << "not a certificate\n";
  ::kill(s.proc->pid(), SIGHUP);
  REQUIRE(eventually([&] { return s.log().find("Reload failed, keeping the previous settings") != std::string::npos; }, 10s));
  CHECK(answers(s.admin(issued.ca_cert.string())));
  ::kill(s.proc->pid(), SIGTERM);
  CHECK(s.proc->wait() == 0);
}

TEST_CASE("SIGHUP on the verifier: still answers with the agents it has", "[ops]") {
  Service s("verifier");
  s.start();
  std::ofstream(s.dir.path() / "logging.conf") << "[logger_keylime]\nlevel = WARNING\n";
  ::kill(s.proc->pid(), SIGHUP);
  REQUIRE(eventually([&] { return s.log().find("Received SIGHUP") != std::string::npos; }, 10s));
  std::this_thread::sleep_for(300ms);
  INFO(s.log());
  CHECK(s.proc->running());
  CHECK(answers(s.admin()));
  // At WARNING the reload's own INFO summary is not printed any more.
  CHECK_THAT(s.log(), !Catch::Contains("Reload complete"));
  ::kill(s.proc->pid(), SIGTERM);
  CHECK(s.proc->wait() == 0);
}

TEST_CASE("JSON log format from KEYLIME_LOG_FORMAT: every stderr line is one JSON object", "[ops]") {
  Service s("registrar");
  s.start({}, {{"KEYLIME_LOG_FORMAT", "json"}});
  ::kill(s.proc->pid(), SIGTERM);
  REQUIRE(s.proc->wait() == 0);
  std::istringstream lines(s.log());
  int n = 0;
  bool saw_listening = false;
  for (std::string l; std::getline(lines, l);) {
    INFO(l);
    const auto j = json::parse(l);
    CHECK(j["logger"] == "registrar");
    CHECK(j.contains("level"));
    saw_listening |= j["message"].get<std::string>().find("listening on 127.0.0.1") != std::string::npos;
    ++n;
  }
  CHECK(n >= 3);
  CHECK(saw_listening);
}

TEST_CASE("run_as: started as root, the registrar serves as the given user and owns its state", "[ops]") {
  if (::geteuid() != 0) {
    WARN("not root: skipping the privilege drop test");
    return;
  }
  Service s("registrar");
  ::chmod(s.dir.path().c_str(), 0755);  // the unprivileged user must reach KEYLIME_DIR below it
  s.start({"--run-as", "nobody:nogroup"});
  REQUIRE(eventually([&] { return s.log().find("Running as nobody") != std::string::npos; }, 10s));
  INFO(s.log());
  const std::string status = slurp("/proc/" + std::to_string(s.proc->pid()) + "/status");
  CHECK_THAT(status, Catch::Contains("Uid:\t65534\t65534\t65534\t65534"));
  CHECK_THAT(s.log(), Catch::Contains("Running as nobody"));
  struct stat st {};
  REQUIRE(::stat(s.db().c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  REQUIRE(::stat((s.tls_dir() / "server-private.pem").c_str(), &st) == 0);
  CHECK(st.st_uid == 65534);
  CHECK((st.st_mode & 0777) == 0600);
  kl::http::Client plain("127.0.0.1", s.port);
  kl::testing::SoftwareAgent a;
  kl::testing::RegisterOptions o;
  o.agent_id = "runas-agent";
  CHECK(kl::testing::register_and_activate(plain, a, o).ok());  // the database is writable as nobody
  ::kill(s.proc->pid(), SIGTERM);
  CHECK(s.proc->wait() == 0);
  // An unknown user is a configuration error, before anything is bound.
  auto r = kl::testing::run_command({binary("keylime_registrar").string(), "--run-as", "no-such-user-kl"}, s.env);
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("no such user 'no-such-user-kl'"));
}

TEST_CASE("upgrade: upstream 7.14's reg_data.sqlite is used in place, its agent still registered", "[ops][upgrade]") {
  Service s("registrar");
  fs::copy_file(sample_db("reg_data.sqlite"), s.db());
  const auto before = query(s.db(), "SELECT * FROM registrarmain");
  s.start();
  auto admin = s.admin();
  auto r = admin.request("GET", "/v2.1/agents/" + kSampleAgent);
  INFO(s.log());
  REQUIRE(r.status == 200);
  const auto got = json::parse(r.body)["results"];
  const auto want = json::parse(slurp(sample_db("registrar-get-agent-v2.1.json")))["results"];
  for (const char* k : {"ek_tpm", "aik_tpm", "ekcert", "mtls_cert", "ip", "port", "regcount"}) {
    INFO(k);
    CHECK(got[k] == want[k]);
  }
  r = admin.request("GET", "/v2.6/agents");
  CHECK(json::parse(r.body)["results"]["uuids"] == json::array({kSampleAgent}));
  ::kill(s.proc->pid(), SIGTERM);
  CHECK(s.proc->wait() == 0);
  CHECK(query(s.db(), "SELECT * FROM registrarmain") == before);
  CHECK(query(s.db(), "SELECT version_num FROM alembic_version_registrar") == std::vector<std::string>{kHead});
  CHECK(slurp(sample_db("reg_data.sqlite")) != "");  // the original is only read
}

TEST_CASE("upgrade: upstream 7.14's cv_data.sqlite: the added agent is listed and resumed", "[ops][upgrade]") {
  Service s("verifier");
  fs::copy_file(sample_db("cv_data.sqlite"), s.db());
  s.start();
  auto admin = s.admin();
  auto r = admin.request("GET", "/v2.6/agents/" + kSampleAgent);
  INFO(s.log());
  REQUIRE(r.status == 200);
  const auto got = json::parse(r.body)["results"];
  const auto want = json::parse(slurp(sample_db("verifier-get-agent-v2.6.json")))["results"];
  for (const char* k : {"ip", "port", "tpm_policy", "accept_tpm_hash_algs", "hash_alg", "enc_alg", "sign_alg",
                        "has_runtime_policy", "verifier_id"}) {
    INFO(k);
    CHECK(got[k] == want[k]);
  }
  CHECK(got["attestation_count"].get<long long>() >= 3);
  CHECK_THAT(s.log(), Catch::Contains("Resumed polling of 1 agent(s) from the database"));
  r = admin.request("GET", "/v2.6/agents");
  // Upstream's verifier lists uuids grouped per verifier: [[...]].
  CHECK(json::parse(r.body)["results"]["uuids"] == json::array({json::array({kSampleAgent})}));
  ::kill(s.proc->pid(), SIGTERM);
  CHECK(s.proc->wait() == 0);
  CHECK(query(s.db(), "SELECT agent_id FROM verifiermain") == std::vector<std::string>{kSampleAgent});
  CHECK(query(s.db(), "SELECT name FROM allowlists") == std::vector<std::string>{kSampleAgent});
  CHECK(query(s.db(), "SELECT version_num FROM alembic_version_cloud_verifier") == std::vector<std::string>{kHead});
}

TEST_CASE("upgrade: a database at another alembic revision is refused, named, and left untouched", "[ops][upgrade]") {
  for (const std::string comp : {"registrar", "verifier"}) {
    for (const std::string rev : {"f35cdd35eb83", "ffffffffffff"}) {
      INFO(comp << " " << rev);
      Service s(comp);
      const std::string table = comp == "registrar" ? "alembic_version_registrar" : "alembic_version_cloud_verifier";
      fs::copy_file(sample_db(comp == "registrar" ? "reg_data.sqlite" : "cv_data.sqlite"), s.db());
      exec_sql(s.db(), "UPDATE " + table + " SET version_num = '" + rev + "'");
      const auto before = slurp(s.db());
      const auto r = s.run_to_exit();
      INFO(r.output);
      CHECK(r.status == 1);
      CHECK_THAT(r.output, Catch::Contains("keylime_" + comp + ": cannot open the database: database " + s.db().string() +
                                           " is at alembic revision " + rev) &&
                               Catch::Contains("supports only revision " + kHead));
      CHECK(query(s.db(), "SELECT version_num FROM " + table) == std::vector<std::string>{rev});
      CHECK(slurp(s.db()) == before);
    }
  }
}

TEST_CASE("shipped configuration templates load without unknown-key warnings", "[ops]") {
  for (const std::string comp : {"registrar", "verifier"}) {
    Service s(comp);
    s.start();
    ::kill(s.proc->pid(), SIGTERM);
    REQUIRE(s.proc->wait() == 0);
    INFO(s.log());
    CHECK_THAT(s.log(), Catch::Contains("Reading configuration from " + source("config/" + comp + ".conf").string()));
    CHECK_THAT(s.log(), !Catch::Contains("unknown key"));
  }
}

TEST_CASE("systemd units pass systemd-analyze verify", "[ops][systemd]") {
  const auto analyze = kl::testing::find_executable("systemd-analyze");
  if (analyze.empty()) {
    WARN("systemd-analyze not installed (apt-get install systemd): skipping the unit check");
    return;
  }
  kl::testing::TempDir t;
  for (const std::string comp : {"registrar", "verifier"}) {
    const auto unit = "keylime_" + comp + ".service";
    // The units as configured for this build, with ExecStart pointing at the binary just built.
    std::string text = slurp(fs::path(KL_BINARY_DIR) / "systemd" / unit);
    REQUIRE_FALSE(text.empty());
    CHECK(text.find("@KL_") == std::string::npos);  // every placeholder substituted
    const auto p = text.find("ExecStart=");
    const auto e = text.find('\n', p);
    text.replace(p, e - p, "ExecStart=" + binary("keylime_" + comp).string());
    for (const char* key : {"Type=notify", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                            "RestrictAddressFamilies=", "CapabilityBoundingSet=", "User=keylime", "ReadWritePaths=/var/lib/keylime"})
      CHECK_THAT(text, Catch::Contains(key));
    std::ofstream(t.path() / unit) << text;
    const auto r = kl::testing::run_command({analyze.string(), "verify", "--man=no", (t.path() / unit).string()});
    INFO(r.output);
    CHECK(r.status == 0);
    // Warnings about the unit itself (not about the host's other units) must not appear.
    CHECK(r.output.find(unit + ":") == std::string::npos);
  }
}
