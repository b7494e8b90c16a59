#include "tools/policy/arg_parser.hpp"

#include <algorithm>
#include <cstdio>

namespace kl::tools {

OptionSpec option(std::string short_name, std::string long_name, std::string dest, OptionSpec::Kind kind,
                  std::string metavar, std::string help, bool required, std::vector<std::string> choices) {
  OptionSpec s;
  s.short_name = std::move(short_name);
  s.long_name = std::move(long_name);
  s.dest = std::move(dest);
  s.kind = kind;
  s.metavar = std::move(metavar);
  s.help = std::move(help);
  s.required = required;
  s.choices = std::move(choices);
  return s;
}

bool ParsedArgs::flag(const std::string& dest) const {
  auto it = flags.find(dest);
  return it != flags.end() && it->second;
}

std::string ParsedArgs::value(const std::string& dest, const std::string& fallback) const {
  auto it = values.find(dest);
  return it == values.end() ? fallback : it->second;
}

std::vector<std::string> ParsedArgs::list(const std::string& dest) const {
  auto it = lists.find(dest);
  return it == lists.end() ? std::vector<std::string>{} : it->second;
}

const OptionSpec* ArgParser::find(const std::string& name) const {
  for (const auto& s : specs_)
    if ((!s.short_name.empty() && s.short_name == name) || s.long_name == name) return &s;
  return nullptr;
}

namespace {

std::string display_name(const OptionSpec& s) {
  return s.short_name.empty() ? s.long_name : s.short_name + "/" + s.long_name;
}

std::string metavar_of(const OptionSpec& s) {
  if (!s.choices.empty()) {
    std::string m = "{";
    for (std::size_t i = 0; i < s.choices.size(); ++i) m += (i ? "," : "") + s.choices[i];
    return m + "}";
  }
  return s.metavar.empty() ? "VALUE" : s.metavar;
}

}  // namespace

ParsedArgs ArgParser::parse(const std::vector<std::string>& args) const {
  ParsedArgs out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      return out;
    }
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    } else if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-') {
      // "-mFILE" form for short options that take a value.
      const OptionSpec* s = find(arg.substr(0, 2));
      if (s && s->kind != OptionSpec::Kind::flag) {
        inline_value = arg.substr(2);
        arg = arg.substr(0, 2);
      }
    }
    const OptionSpec* spec = arg.size() > 1 && arg[0] == '-' ? find(arg) : nullptr;
    if (!spec) {
      out.error = "unrecognized arguments: " + args[i];
      return out;
    }
    if (spec->kind == OptionSpec::Kind::flag) {
      if (inline_value) {
        out.error = "argument " + display_name(*spec) + ": ignored explicit argument '" + *inline_value + "'";
        return out;
      }
      out.flags[spec->dest] = true;
      continue;
    }
    std::optional<std::string> value = inline_value;
    if (!value) {
      const bool next_is_value = i + 1 < args.size() && (args[i + 1].empty() || args[i + 1][0] != '-' || args[i + 1] == "-");
      if (next_is_value) {
        value = args[++i];
      } else if (spec->kind == OptionSpec::Kind::optional_value) {
        out.values[spec->dest] = "";
        continue;
      } else {
        out.error = "argument " + display_name(*spec) + ": expected one argument";
        return out;
      }
    }
    if (!spec->choices.empty() && std::find(spec->choices.begin(), spec->choices.end(), *value) == spec->choices.end()) {
      std::string list;
      for (std::size_t c = 0; c < spec->choices.size(); ++c) list += (c ? ", '" : "'") + spec->choices[c] + "'";
      out.error = "argument " + display_name(*spec) + ": invalid choice: '" + *value + "' (choose from " + list + ")";
      return out;
    }
    if (spec->kind == OptionSpec::Kind::append)
      out.lists[spec->dest].push_back(*value);
    else
      out.values[spec->dest] = *value;
  }
  std::string missing;
  for (const auto& s : specs_)
    if (s.required && !out.values.count(s.dest) && !out.lists.count(s.dest))
      missing += (missing.empty() ? "" : ", ") + display_name(s);
  if (!missing.empty()) out.error = "the following arguments are required: " + missing;
  return out;
}

std::string ArgParser::usage() const {
  std::string u = "usage: " + prog_ + " [-h]";
  for (const auto& s : specs_) {
    std::string item = s.short_name.empty() ? s.long_name : s.short_name;
    if (s.kind == OptionSpec::Kind::optional_value)
      item += " [" + metavar_of(s) + "]";
    else if (s.kind != OptionSpec::Kind::flag)
      item += " " + metavar_of(s);
    u += s.required ? " " + item : " [" + item + "]";
  }
  return u + "\n";
}

std::string ArgParser::help() const {
  std::string h = usage() + "\n" + description_ + "\n\noptions:\n  -h, --help            show this help message and exit\n";
  for (const auto& s : specs_) {
    std::string names;
    std::string mv = s.kind == OptionSpec::Kind::flag ? "" : " " + metavar_of(s);
    if (s.kind == OptionSpec::Kind::optional_value) mv = " [" + metavar_of(s) + "]";
    if (!s.short_name.empty()) names = s.short_name + mv + ", ";
    names += s.long_name + mv;
    std::string line = "  " + names;
    if (line.size() < 24)
      line.append(24 - line.size(), ' ');
    else
      line += "\n" + std::string(24, ' ');
    h += line + s.help + (s.required ? " (required)" : "") + "\n";
  }
  return h;
}

std::optional<int> handle_help_or_error(const ArgParser& parser, const ParsedArgs& parsed) {
  if (parsed.help) {
    std::fputs(parser.help().c_str(), stdout);
    return 0;
  }
  if (!parsed.error.empty()) {
    std::fputs((parser.usage() + parser.prog() + ": error: " + parsed.error + "\n").c_str(), stderr);
    return 2;
  }
  return std::nullopt;
}

}  // namespace kl::tools
