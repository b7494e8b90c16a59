#include <catch2/catch.hpp>

#include <fstream>

#include "common/service/config/config.hpp"
#include "common/service/config/known_keys.hpp"
#include "common/service/config/list_value.hpp"
#include "support/temp_dir.hpp"

using kl::config::Config;
using kl::config::ConfigError;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

}  // namespace

TEST_CASE("values: quotes and spaces stripped as upstream's strip('\" ')", "[config]") {
  const auto c = Config::from_string("registrar",
                                     "[registrar]\n"
                                     "ip = \"0.0.0.0\"\n"
                                     "tls_dir =   \" default \"  \n"
                                     "server_key_password = \"\"\n"
                                     "single = 'kept'\n");
  CHECK(c.get("registrar", "ip", "x") == "0.0.0.0");
  CHECK(c.get("registrar", "tls_dir", "x") == "default");
  CHECK(c.get("registrar", "server_key_password", "x").empty());
  CHECK(c.raw("registrar", "server_key_password") == std::optional<std::string>(""));
  CHECK(c.get("registrar", "single", "x") == "'kept'");  // upstream strips only double quotes
  CHECK(c.get("registrar", "absent", "fb") == "fb");
  CHECK_FALSE(c.raw("registrar", "absent").has_value());
  CHECK_FALSE(c.raw("verifier", "ip").has_value());
}

TEST_CASE("INI dialect: ':' separator, case-insensitive keys, comments, continuation, DEFAULT", "[config]") {
  const auto c = Config::from_string("verifier",
                                     "# comment\n"
                                     "; another\n"
                                     "[DEFAULT]\n"
                                     "shared = from-default\n"
                                     "[verifier]\n"
                                     "Quote_Interval: 5\n"
                                     "severity_policy = [{\"event_id\": \".*\",\n"
                                     "    \"severity_label\": \"emergency\"}]\n"
                                     "\n"
                                     "port = 9000\n");
  CHECK(c.get_int("verifier", "quote_interval", 2) == 5);
  CHECK(c.get_int("verifier", "QUOTE_INTERVAL", 2) == 5);
  CHECK(c.get("verifier", "severity_policy", "") ==
        "[{\"event_id\": \".*\",\n\"severity_label\": \"emergency\"}]");
  CHECK(c.get_int("verifier", "port", 0) == 9000);
  CHECK(c.get("verifier", "shared", "") == "from-default");
}

TEST_CASE("malformed INI is refused with the origin and line", "[config]") {
  CHECK(error_of([] { Config::from_string("registrar", "[registrar]\njust words\n"); }).find(":2:") !=
        std::string::npos);
  CHECK(error_of([] { Config::from_string("registrar", "ip = 1\n"); }).find("before any [section]") !=
        std::string::npos);
  CHECK(error_of([] { Config::from_string("registrar", "[registrar]\nport = 1\nport = 2\n"); })
            .find("'port' in section [registrar] repeated") != std::string::npos);
  CHECK(error_of([] { Config::from_string("registrar", "[registrar\nport = 1\n"); }).find("section header") !=
        std::string::npos);
}

TEST_CASE("typed getters", "[config]") {
  const auto c = Config::from_string("verifier",
                                     "[verifier]\n"
                                     "port = \"8881\"\n"
                                     "neg = -3\n"
                                     "big = 1_000\n"
                                     "bad_int = 12abc\n"
                                     "timeout = 60.5\n"
                                     "bad_float = fast\n"
                                     "b1 = True\n"
                                     "b2 = off\n"
                                     "b3 = YES\n"
                                     "b4 = 0\n"
                                     "bad_bool = maybe\n"
                                     "huge = 99999999999999999999999\n");
  CHECK(c.get_int("verifier", "port", 0) == 8881);
  CHECK(c.get_int("verifier", "neg", 0) == -3);
  CHECK(c.get_int("verifier", "big", 0) == 1000);
  CHECK(c.get_int("verifier", "missing", 42) == 42);
  const std::string e = error_of([&] { c.get_int("verifier", "bad_int", 0); });
  CHECK(e.find("bad_int") != std::string::npos);
  CHECK(e.find("[verifier]") != std::string::npos);
  CHECK(e.find("12abc") != std::string::npos);
  CHECK_THROWS_AS(c.get_int("verifier", "huge", 0), ConfigError);
  CHECK(c.get_float("verifier", "timeout", 0) == Approx(60.5));
  CHECK(c.get_float("verifier", "port", 0) == Approx(8881.0));
  CHECK(error_of([&] { c.get_float("verifier", "bad_float", 0); }).find("bad_float") != std::string::npos);
  CHECK(c.get_bool("verifier", "b1", false));
  CHECK_FALSE(c.get_bool("verifier", "b2", true));
  CHECK(c.get_bool("verifier", "b3", false));
  CHECK_FALSE(c.get_bool("verifier", "b4", true));
  CHECK(c.get_bool("verifier", "missing", true));
  CHECK(error_of([&] { c.get_bool("verifier", "bad_bool", false); }).find("bad_bool") != std::string::npos);
}

TEST_CASE("lists: Python literal and comma forms", "[config]") {
  const auto c = Config::from_string("verifier",
                                     "[verifier]\n"
                                     "l1 = ['agent', \"webhook\" ]\n"
                                     "l2 = [agent]\n"
                                     "l3 = ek_tpm, aik_tpm ,ekcert\n"
                                     "l4 = []\n"
                                     "l5 = \n"
                                     "l6 = [{\"event_id\": \".*\", \"severity_label\" : \"emergency\"}, 'x',]\n"
                                     "l7 = [10, 11]\n"
                                     "bad = ['unterminated]\n"
                                     "bad2 = [1, 2\n");
  using V = std::vector<std::string>;
  CHECK(c.get_list("verifier", "l1", {}) == V{"agent", "webhook"});
  CHECK(c.get_list("verifier", "l2", {}) == V{"agent"});
  CHECK(c.get_list("verifier", "l3", {}) == V{"ek_tpm", "aik_tpm", "ekcert"});
  CHECK(c.get_list("verifier", "l4", {"fb"}).empty());
  CHECK(c.get_list("verifier", "l5", {"fb"}).empty());
  CHECK(c.get_list("verifier", "l6", {}) ==
        V{"{\"event_id\": \".*\", \"severity_label\" : \"emergency\"}", "x"});
  CHECK(c.get_list("verifier", "l7", {}) == V{"10", "11"});
  CHECK(c.get_list("verifier", "missing", {"fb"}) == V{"fb"});
  CHECK(error_of([&] { c.get_list("verifier", "bad", {}); }).find("'bad'") != std::string::npos);
  CHECK(error_of([&] { c.get_list("verifier", "bad2", {}); }).find("'bad2'") != std::string::npos);
  // The shipped defaults parse.
  CHECK(kl::config::parse_list_value(kl::config::verifier_defaults().at("severity_labels")).size() == 7);
  CHECK(kl::config::parse_list_value(kl::config::revocations_defaults().at("enabled_revocation_notifications")) ==
        V{"agent"});
}

TEST_CASE("environment overrides: KEYLIME_<COMP>_<OPTION> and KEYLIME_<COMP>_<SECTION>_<OPTION>", "[config]") {
  const std::map<std::string, std::string> env{
      {"KEYLIME_VERIFIER_QUOTE_INTERVAL", "7"},
      {"KEYLIME_VERIFIER_REVOCATIONS_WEBHOOK_URL", "\"http://127.0.0.1:9/hook\""},
      {"KEYLIME_VERIFIER_NEW_OPTION", "on"},
      {"KEYLIME_REGISTRAR_PORT", "1"},  // another component's variable: ignored
  };
  const auto c = Config::from_string("verifier",
                                     "[verifier]\nquote_interval = 2\nport = 8881\n"
                                     "[revocations]\nwebhook_url = http://file\nzmq_port = 8992\n",
                                     env);
  CHECK(c.get_int("verifier", "quote_interval", 0) == 7);
  CHECK(c.get("revocations", "webhook_url", "") == "http://127.0.0.1:9/hook");
  CHECK(c.get_bool("verifier", "new_option", false));
  CHECK(c.get_int("verifier", "port", 0) == 8881);
  CHECK(c.get_int("revocations", "zmq_port", 0) == 8992);
  // The short form applies only to the component's own section.
  const auto c2 = Config::from_string("verifier", "[revocations]\nwebhook_url = file\n",
                                      {{"KEYLIME_VERIFIER_WEBHOOK_URL", "env"}});
  CHECK(c2.get("revocations", "webhook_url", "") == "file");
  // A bad value from the environment is reported like one from a file.
  const auto c3 = Config::from_string("registrar", "", {{"KEYLIME_REGISTRAR_PORT", "http"}});
  CHECK(error_of([&] { c3.get_int("registrar", "port", 8890); }).find("'port' in section [registrar]") !=
        std::string::npos);
}

TEST_CASE("unknown_keys lists keys not in the known set", "[config]") {
  const auto c = Config::from_string("registrar", "[registrar]\nip = 1\nport = 2\nportt = 3\nzzz = 4\n");
  CHECK(c.unknown_keys("registrar", kl::config::key_names(kl::config::registrar_defaults())) ==
        std::vector<std::string>{"portt", "zzz"});
  CHECK(c.unknown_keys("absent", {}).empty());
}

TEST_CASE("search order: explicit file > KEYLIME_<COMP>_CONFIG > /etc > /usr/etc", "[config]") {
  kl::testing::TempDir t;
  const fs::path etc = t.path() / "etc", usr = t.path() / "usr";
  const std::vector<fs::path> roots{etc, usr};
  write(usr / "registrar.conf", "[registrar]\nport = 1\nip = usr\n");

  SECTION("only /usr/etc") {
    const auto c = Config::load_from_roots("registrar", std::nullopt, {}, roots);
    CHECK(c.get("registrar", "port", "") == "1");
    CHECK(c.files_read() == std::vector<fs::path>{usr / "registrar.conf"});
  }
  write(etc / "registrar.conf", "[registrar]\nport = 2\n");
  SECTION("/etc wins and /usr/etc is ignored entirely") {
    const auto c = Config::load_from_roots("registrar", std::nullopt, {}, roots);
    CHECK(c.get("registrar", "port", "") == "2");
    CHECK_FALSE(c.raw("registrar", "ip").has_value());
  }
  write(t.path() / "env.conf", "[registrar]\nport = 3\n");
  const std::map<std::string, std::string> env{{"KEYLIME_REGISTRAR_CONFIG", (t.path() / "env.conf").string()}};
  SECTION("env file beats /etc") {
    const auto c = Config::load_from_roots("registrar", std::nullopt, env, roots);
    CHECK(c.get("registrar", "port", "") == "3");
    CHECK(c.files_read() == std::vector<fs::path>{t.path() / "env.conf"});
  }
  SECTION("env file that does not exist falls back to /etc") {
    const auto c = Config::load_from_roots(
        "registrar", std::nullopt, {{"KEYLIME_REGISTRAR_CONFIG", (t.path() / "nope.conf").string()}}, roots);
    CHECK(c.get("registrar", "port", "") == "2");
  }
  write(t.path() / "explicit.conf", "[registrar]\nport = 4\n");
  SECTION("explicit file beats the env file") {
    const auto c = Config::load_from_roots("registrar", t.path() / "explicit.conf", env, roots);
    CHECK(c.get("registrar", "port", "") == "4");
  }
  SECTION("a missing explicit file is an error naming it") {
    CHECK(error_of([&] { Config::load_from_roots("registrar", t.path() / "missing.conf", env, roots); })
              .find("missing.conf") != std::string::npos);
  }
  SECTION("env overrides still apply on top of files") {
    auto env2 = env;
    env2["KEYLIME_REGISTRAR_PORT"] = "5";
    const auto c = Config::load_from_roots("registrar", std::nullopt, env2, roots);
    CHECK(c.get_int("registrar", "port", 0) == 5);
  }
}

TEST_CASE("no file anywhere: defaults apply", "[config]") {
  kl::testing::TempDir t;
  const auto c = Config::load_from_roots("verifier", std::nullopt, {}, {t.path() / "etc", t.path() / "usr"});
  CHECK(c.files_read().empty());
  CHECK(c.get_int("verifier", "port", 8881) == 8881);
}

TEST_CASE("snippets override the base file, /usr/etc first then /etc, sorted by name", "[config]") {
  kl::testing::TempDir t;
  const fs::path etc = t.path() / "etc", usr = t.path() / "usr";
  write(etc / "verifier.conf", "[verifier]\nport = 1\nip = base\nquote_interval = 2\n[revocations]\nzmq_port = 1\n");
  write(usr / "verifier.conf.d" / "10-a.conf", "[verifier]\nport = 10\nip = usr-a\n");
  write(etc / "verifier.conf.d" / "20-b.conf", "[verifier]\nport = 20\n");
  write(etc / "verifier.conf.d" / "10-a.conf", "[verifier]\nport = 15\n[revocations]\nzmq_port = 2\n");
  const auto c = Config::load_from_roots("verifier", std::nullopt, {}, {etc, usr});
  CHECK(c.get_int("verifier", "port", 0) == 20);
  CHECK(c.get("verifier", "ip", "") == "usr-a");
  CHECK(c.get_int("verifier", "quote_interval", 0) == 2);
  CHECK(c.get_int("revocations", "zmq_port", 0) == 2);
  CHECK(c.files_read() == std::vector<fs::path>{etc / "verifier.conf", usr / "verifier.conf.d" / "10-a.conf",
                                                etc / "verifier.conf.d" / "10-a.conf",
                                                etc / "verifier.conf.d" / "20-b.conf"});
  SECTION("a broken snippet is refused with its path") {
    write(etc / "verifier.conf.d" / "30-bad.conf", "garbage\n");
    CHECK(error_of([&] { Config::load_from_roots("verifier", std::nullopt, {}, {etc, usr}); })
              .find("30-bad.conf") != std::string::npos);
  }
  SECTION("snippets are not mixed into an env-selected file") {
    write(t.path() / "env.conf", "[verifier]\nport = 99\n");
    const auto c2 = Config::load_from_roots(
        "verifier", std::nullopt, {{"KEYLIME_VERIFIER_CONFIG", (t.path() / "env.conf").string()}}, {etc, usr});
    CHECK(c2.get_int("verifier", "port", 0) == 99);
    CHECK_FALSE(c2.raw("verifier", "ip").has_value());
  }
}

TEST_CASE("keylime_dir and environment snapshot", "[config]") {
  CHECK(kl::config::keylime_dir({}) == fs::path("/var/lib/keylime"));
  CHECK(kl::config::keylime_dir({{"KEYLIME_DIR", "/tmp/kl"}}) == fs::path("/tmp/kl"));
  ::setenv("KL_CFG_TEST_VAR", "a=b", 1);
  CHECK(kl::config::environment().at("KL_CFG_TEST_VAR") == "a=b");
}

TEST_CASE("known key tables hold the spec defaults", "[config]") {
  CHECK(kl::config::registrar_defaults().at("port") == "8890");
  CHECK(kl::config::registrar_defaults().at("tls_port") == "8891");
  CHECK(kl::config::registrar_defaults().at("signed_attributes") == "ek_tpm,aik_tpm,ekcert");
  CHECK(kl::config::verifier_defaults().at("quote_interval") == "2");
  CHECK(kl::config::verifier_defaults().at("tls_dir") == "generate");
  CHECK(kl::config::verifier_defaults().at("request_timeout") == "60.0");
  CHECK(kl::config::verifier_defaults().size() == 56);
  CHECK(kl::config::revocations_defaults().at("zmq_port") == "8992");
}
