#include "common/service/log/logging.hpp"

#include <algorithm>
#include <cctype>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "common/service/config/config.hpp"

namespace kl::log {
namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// Writes the level the way Python's logging names it (INFO, WARNING, CRITICAL), so log scrapers written
// for upstream's "<time> - <logger> - <LEVEL> - <message>" lines keep matching.
class PythonLevelFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char* name = "INFO";
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: name = "DEBUG"; break;
      case spdlog::level::info: name = "INFO"; break;
      case spdlog::level::warn: name = "WARNING"; break;
      case spdlog::level::err: name = "ERROR"; break;
      case spdlog::level::critical: name = "CRITICAL"; break;
      default: break;
    }
    dest.append(name, name + std::char_traits<char>::length(name));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PythonLevelFlag>(); }
};

// Level from logging.conf: the keylime logger's own level, else the root logger's.
std::optional<std::string> level_from_logging_conf(const std::map<std::string, std::string>& env) {
  try {
    const auto conf = config::Config::load("logging", std::nullopt, env);
    if (auto v = conf.raw("logger_keylime", "level"); v && !v->empty()) return v;
    if (auto v = conf.raw("logger_root", "level"); v && !v->empty()) return v;
  } catch (const config::ConfigError&) {
    // A broken logging.conf must not keep the service from logging; INFO applies.
  }
  return std::nullopt;
}

}  // namespace

spdlog::level::level_enum parse_level(const std::string& name) {
  const std::string n = upper(name);
  if (n == "DEBUG" || n == "NOTSET" || n == "TRACE") return spdlog::level::debug;
  if (n == "INFO") return spdlog::level::info;
  if (n == "WARNING" || n == "WARN") return spdlog::level::warn;
  if (n == "ERROR") return spdlog::level::err;
  if (n == "CRITICAL" || n == "FATAL") return spdlog::level::critical;
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::map<std::string, std::string>& env) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // Not registered in spdlog's global registry: callers own their logger, and a second service or test
  // in one process may create the same name again.
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PythonLevelFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e - %n - %* - %v");
  logger->set_formatter(std::move(formatter));

  std::optional<std::string> level;
  if (auto it = env.find("KEYLIME_LOG_LEVEL"); it != env.end() && !it->second.empty()) level = it->second;
  if (!level) level = level_from_logging_conf(env);
  logger->set_level(level ? parse_level(*level) : spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace kl::log
