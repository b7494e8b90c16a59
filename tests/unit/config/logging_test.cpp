#include <catch2/catch.hpp>

#include <fstream>

#include "common/service/log/logging.hpp"
#include "support/temp_dir.hpp"

TEST_CASE("log level names as Python's logging spells them", "[log]") {
  using kl::log::parse_level;
  CHECK(parse_level("DEBUG") == spdlog::level::debug);
  CHECK(parse_level("warning") == spdlog::level::warn);
  CHECK(parse_level("WARN") == spdlog::level::warn);
  CHECK(parse_level("Error") == spdlog::level::err);
  CHECK(parse_level("CRITICAL") == spdlog::level::critical);
  CHECK(parse_level("bogus") == spdlog::level::info);
}

TEST_CASE("make_logger: KEYLIME_LOG_LEVEL, then logging.conf, else INFO", "[log]") {
  kl::testing::TempDir t;
  const auto conf = t.path() / "logging.conf";
  std::ofstream(conf) << "[logging]\nversion = 2.0\n[logger_root]\nlevel = ERROR\n[logger_keylime]\nlevel = DEBUG\n";
  const std::string confs = conf.string();
  CHECK(kl::log::make_logger("keylime.registrar", {{"KEYLIME_LOG_LEVEL", "WARNING"}, {"KEYLIME_LOGGING_CONFIG", confs}})
            ->level() == spdlog::level::warn);
  CHECK(kl::log::make_logger("keylime.registrar", {{"KEYLIME_LOGGING_CONFIG", confs}})->level() ==
        spdlog::level::debug);
  // The same name twice is fine: loggers are not registered globally.
  const auto l = kl::log::make_logger("keylime.registrar", {{"KEYLIME_LOGGING_CONFIG", (t.path() / "none").string()}});
  CHECK(l->name() == "keylime.registrar");
}
