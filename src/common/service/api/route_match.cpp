#include "common/service/api/route_match.hpp"

#include <nlohmann/json.hpp>

namespace kl::api {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) out.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

namespace {

// "v2", "v2.0".."v2.6" -> 2; "v3", "v3.0" -> 3; anything else -> 0 (no route: 404, §0.3).
int version_of(std::string_view seg) {
  static const std::vector<std::string_view> v2{"v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6"};
  static const std::vector<std::string_view> v3{"v3", "v3.0"};
  for (auto s : v2)
    if (seg == s) return 2;
  for (auto s : v3)
    if (seg == s) return 3;
  return 0;
}

}  // namespace

std::optional<PathMatch> match_path(Scope scope, std::string_view pattern,
                                    const std::vector<std::string_view>& segments) {
  PathMatch m;
  size_t first = 0;
  if (scope != Scope::unversioned) {
    if (segments.empty()) return std::nullopt;
    const int v = version_of(segments[0]);
    const bool ok = (v == 2 && (scope == Scope::v2 || scope == Scope::v2_and_v3)) ||
                    (v == 3 && (scope == Scope::v3 || scope == Scope::v2_and_v3));
    if (!ok) return std::nullopt;
    m.major_version = v;
    m.version = std::string(segments[0].substr(1));
    first = 1;
  }
  const auto pat = split_path(pattern);
  if (segments.size() - first != pat.size()) return std::nullopt;
  for (size_t i = 0; i < pat.size(); ++i) {
    const std::string_view seg = segments[first + i];
    if (!pat[i].empty() && pat[i][0] == ':')
      m.captures[std::string(pat[i])] = std::string(seg);
    else if (pat[i] != seg)
      return std::nullopt;
  }
  return m;
}

bool known_http_method(const std::string& m) {
  for (const char* k : {"GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"})
    if (m == k) return true;
  return false;
}

http::Response jsonapi_error(int status, const char* title, const std::string& detail) {
  nlohmann::json body = {{"errors", {{{"status", std::to_string(status)}, {"title", title}, {"detail", detail}}}}};
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace kl::api
