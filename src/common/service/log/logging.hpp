// Service logging: one spdlog logger per component, to stderr (journald picks
// it up under systemd), with the level chosen the way upstream operators set it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace kl::log {

// spdlog logger named `name` to stderr, level from KEYLIME_LOG_LEVEL / logging.conf's level if present (INFO default).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::map<std::string, std::string>& env);

// Python logging level name (DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL, NOTSET, case-insensitive) -> spdlog level.
// Unknown names give info.
spdlog::level::level_enum parse_level(const std::string& name);

}  // namespace kl::log
