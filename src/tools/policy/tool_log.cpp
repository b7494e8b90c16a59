#include "tools/policy/tool_log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace kl::tools {

void ToolLog::write(std::string_view level, std::string_view msg) const {
  std::string line;
  if (verbose_) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03lld - keylime-policy - ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ms));
    line = buf;
    line += level;
    line += " - ";
  }
  line += msg;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void ToolLog::debug(std::string_view msg) const {
  if (verbose_) write("DEBUG", msg);
}
void ToolLog::info(std::string_view msg) const { write("INFO", msg); }
void ToolLog::warning(std::string_view msg) const { write("WARNING", msg); }
void ToolLog::error(std::string_view msg) const { write("ERROR", msg); }

}  // namespace kl::tools
