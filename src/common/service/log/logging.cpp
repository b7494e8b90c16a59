#include "common/service/log/logging.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "common/service/config/config.hpp"

namespace kl::log {
namespace {

// The agent id rides in the logger name after this separator, so one shared sink formatter can show it.
constexpr char kAgentSep = '\x1f';

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

const char* python_level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "DEBUG";
    case spdlog::level::warn: return "WARNING";
    case spdlog::level::err: return "ERROR";
    case spdlog::level::critical: return "CRITICAL";
    default: return "INFO";
  }
}

std::pair<std::string_view, std::string_view> split_name(const spdlog::details::log_msg& msg) {
  std::string_view n(msg.logger_name.data(), msg.logger_name.size());
  const auto p = n.find(kAgentSep);
  if (p == std::string_view::npos) return {n, {}};
  return {n.substr(0, p), n.substr(p + 1)};
}

void append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// The level the way Python's logging names it (INFO, WARNING, CRITICAL), so log scrapers written
// for upstream's "<time> - <logger> - <LEVEL> - <message>" lines keep matching.
class PythonLevelFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append(dest, python_level_name(msg.level));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PythonLevelFlag>(); }
};

class BaseNameFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append(dest, split_name(msg).first);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<BaseNameFlag>(); }
};

class AgentFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto agent = split_name(msg).second;
    if (agent.empty()) return;
    append(dest, "[agent ");
    append(dest, agent);
    append(dest, "] ");
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<AgentFlag>(); }
};

// One JSON object per line: time (UTC, ISO 8601 with milliseconds), logger, level, agent_id (if any), message.
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto t = std::chrono::system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    char ts[40];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    const auto [name, agent] = split_name(msg);
    nlohmann::ordered_json j;
    j["time"] = ts;
    j["logger"] = std::string(name);
    j["level"] = python_level_name(msg.level);
    if (!agent.empty()) j["agent_id"] = std::string(agent);
    j["message"] = std::string(msg.payload.data(), msg.payload.size());
    j["thread"] = msg.thread_id;
    // Invalid UTF-8 in a message (bytes from an agent) is replaced rather than throwing.
    append(dest, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    append(dest, "\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(Format f) {
  if (f == Format::json) return std::make_unique<JsonFormatter>();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PythonLevelFlag>('*').add_flag<BaseNameFlag>('N').add_flag<AgentFlag>('A');
  formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e - %N - %* - %A%v");
  return formatter;
}

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

Format parse_format(const std::string& name) {
  const std::string n = upper(name);
  if (n == "TEXT" || n.empty()) return Format::text;
  if (n == "JSON") return Format::json;
  throw std::invalid_argument("log format '" + name + "' is not text or json");
}

Settings settings_from(const std::map<std::string, std::string>& env, const std::optional<std::string>& config_format) {
  Settings s;
  std::optional<std::string> level;
  if (auto it = env.find("KEYLIME_LOG_LEVEL"); it != env.end() && !it->second.empty()) level = it->second;
  if (!level) level = level_from_logging_conf(env);
  s.level = level ? parse_level(*level) : spdlog::level::info;
  if (auto it = env.find("KEYLIME_LOG_FORMAT"); it != env.end() && !it->second.empty())
    s.format = parse_format(it->second);
  else if (config_format)
    s.format = parse_format(*config_format);
  return s;
}

Settings initial_settings(const std::map<std::string, std::string>& env) {
  Settings s;
  if (auto it = env.find("KEYLIME_LOG_LEVEL"); it != env.end() && !it->second.empty()) s.level = parse_level(it->second);
  if (auto it = env.find("KEYLIME_LOG_FORMAT"); it != env.end() && !it->second.empty()) s.format = parse_format(it->second);
  return s;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const Settings& settings) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // Not registered in spdlog's global registry: callers own their logger, and a second service or test
  // in one process may create the same name again.
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  reconfigure(*logger, settings);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::map<std::string, std::string>& env) {
  Settings s;
  try {
    s = settings_from(env);
  } catch (const std::invalid_argument&) {
    // A bad KEYLIME_LOG_FORMAT is reported by the daemon when it re-reads the settings; log as text meanwhile.
    auto e = env;
    e.erase("KEYLIME_LOG_FORMAT");
    s = settings_from(e);
  }
  return make_logger(name, s);
}

void reconfigure(spdlog::logger& logger, const Settings& settings) {
  for (auto& sink : logger.sinks()) {
    sink->set_formatter(make_formatter(settings.format));
    sink->set_level(settings.level);
  }
  logger.set_level(settings.level);
}

std::shared_ptr<spdlog::logger> with_agent(const std::shared_ptr<spdlog::logger>& base, const std::string& agent_id) {
  std::string name = base->name();
  if (auto p = name.find(kAgentSep); p != std::string::npos) name.resize(p);
  auto child = std::make_shared<spdlog::logger>(name + kAgentSep + agent_id, base->sinks().begin(), base->sinks().end());
  child->set_level(spdlog::level::trace);  // the shared sinks filter, so a reload reaches every child
  child->flush_on(spdlog::level::warn);
  return child;
}

}  // namespace kl::log
