#include "common/service/http/server_tuning.hpp"

#include "common/service/config/config.hpp"

namespace kl::http {

const std::set<std::string>& server_tuning_keys() {
  static const std::set<std::string> keys{"server_request_timeout", "server_max_connections_per_peer",
                                          "server_max_requests_per_second_per_peer"};
  return keys;
}

ServerTuning read_server_tuning(const config::Config& c, const std::string& section) {
  ServerTuning t;
  auto bad = [&](const std::string& key, const std::string& value, const char* expected) {
    throw config::ConfigError("invalid value '" + value + "' for [" + section + "] " + key + ": expected " + expected);
  };
  const long long timeout = c.get_int(section, "server_request_timeout", t.request_timeout.count());
  if (timeout <= 0 || timeout > 86400) bad("server_request_timeout", std::to_string(timeout), "1..86400 seconds");
  t.request_timeout = std::chrono::seconds(timeout);
  const long long conns =
      c.get_int(section, "server_max_connections_per_peer", static_cast<long long>(t.peer_limits.max_connections_per_peer));
  if (conns < 0) bad("server_max_connections_per_peer", std::to_string(conns), "a number >= 0 (0 = no limit)");
  t.peer_limits.max_connections_per_peer = static_cast<std::size_t>(conns);
  const double rate =
      c.get_float(section, "server_max_requests_per_second_per_peer", t.peer_limits.max_requests_per_second_per_peer);
  if (!(rate >= 0)) bad("server_max_requests_per_second_per_peer", std::to_string(rate), "a number >= 0 (0 = no limit)");
  t.peer_limits.max_requests_per_second_per_peer = rate;
  return t;
}

}  // namespace kl::http
