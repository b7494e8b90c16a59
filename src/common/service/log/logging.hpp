// Service logging: one spdlog logger per component, to stderr (journald picks
// it up under systemd), with the level chosen the way upstream operators set it,
// in upstream's text layout or as one JSON object per line.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

namespace kl::log {

enum class Format { text, json };

// What make_logger / reconfigure apply. Level: KEYLIME_LOG_LEVEL, else logging.conf's [logger_keylime] level,
// else [logger_root] level, else INFO. Format: KEYLIME_LOG_FORMAT, else `config_format` (the service's
// log_format option), else text.
struct Settings {
  spdlog::level::level_enum level = spdlog::level::info;
  Format format = Format::text;
};
Settings settings_from(const std::map<std::string, std::string>& env,
                       const std::optional<std::string>& config_format = std::nullopt);

// The settings that can be known without reading any file (KEYLIME_LOG_LEVEL, KEYLIME_LOG_FORMAT): what a daemon
// starts logging with, so that even the lines about reading logging.conf come out in the chosen format.
// Throws std::invalid_argument on a bad KEYLIME_LOG_FORMAT.
Settings initial_settings(const std::map<std::string, std::string>& env);

// "text" | "json" (case-insensitive); std::invalid_argument naming the value otherwise.
Format parse_format(const std::string& name);

// spdlog logger named `name` to stderr, configured from settings_from(env).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::map<std::string, std::string>& env);
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const Settings& settings);

// Re-applies level and format to `logger` and its sinks (SIGHUP). Loggers made by with_agent() from it share
// its sinks and follow the new level and format too.
void reconfigure(spdlog::logger& logger, const Settings& settings);

// A logger writing to `base`'s sinks whose lines carry the agent id: text lines read
// "<time> - <name> - <LEVEL> - [agent <id>] <message>", JSON lines get an "agent_id" member. Cheap enough to
// make per attestation round; the level filter is the shared sinks' (so SIGHUP changes apply).
std::shared_ptr<spdlog::logger> with_agent(const std::shared_ptr<spdlog::logger>& base, const std::string& agent_id);

// Python logging level name (DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL, NOTSET, case-insensitive) -> spdlog level.
// Unknown names give info.
spdlog::level::level_enum parse_level(const std::string& name);

}  // namespace kl::log
