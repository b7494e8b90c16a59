// keylime-policy: create runtime / measured-boot policies and sign runtime policies, with the
// command line of upstream Keylime's keylime-policy (see docs/policy-tool.md).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tools/policy/create_measured_boot.hpp"
#include "tools/policy/create_runtime.hpp"
#include "tools/policy/sign_runtime.hpp"

namespace {

constexpr const char* kMainHelp =
    "usage: keylime-policy [-h] {create,sign} ...\n"
    "\n"
    "Create and sign Keylime runtime and measured-boot policies.\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "  --version             show the version and exit\n"
    "\n"
    "actions:\n"
    "  {create,sign}\n"
    "    create              make a runtime (IMA) policy or a measured-boot reference state\n"
    "    sign                wrap a runtime policy in a DSSE signature\n";

constexpr const char* kCreateHelp =
    "usage: keylime-policy create [-h] {runtime,measured-boot} ...\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "\n"
    "create:\n"
    "  {runtime,measured-boot}\n"
    "    runtime             runtime (IMA) policy from a log, a tree, an allowlist\n"
    "    measured-boot       reference state for the example measured-boot policy\n";

constexpr const char* kSignHelp =
    "usage: keylime-policy sign [-h] {runtime} ...\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "\n"
    "sign:\n"
    "  {runtime}\n"
    "    runtime             DSSE-sign a runtime policy\n";

int usage_error(const char* usage_line, const std::string& prog, const std::string& message) {
  std::fprintf(stderr, "%s%s: error: %s\n", usage_line, prog.c_str(), message.c_str());
  return 2;
}

bool is_help(const std::string& a) { return a == "-h" || a == "--help"; }

int dispatch(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kMainHelp, stdout);  // upstream prints the help and exits 0
    return 0;
  }
  const std::string& action = args[0];
  if (is_help(action)) {
    std::fputs(kMainHelp, stdout);
    return 0;
  }
  if (action == "--version") {
    std::printf("keylime-policy (keylime-cpp) %s\n", KL_VERSION);
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (action == "create") {
    const char* usage = "usage: keylime-policy create [-h] {runtime,measured-boot} ...\n";
    if (rest.empty()) return usage_error(usage, "keylime-policy create", "the following arguments are required: create");
    if (is_help(rest[0])) {
      std::fputs(kCreateHelp, stdout);
      return 0;
    }
    const std::vector<std::string> sub(rest.begin() + 1, rest.end());
    if (rest[0] == "runtime") return kl::tools::run_create_runtime(sub);
    if (rest[0] == "measured-boot") return kl::tools::run_create_measured_boot(sub);
    return usage_error(usage, "keylime-policy create",
                       "argument create: invalid choice: '" + rest[0] + "' (choose from 'runtime', 'measured-boot')");
  }
  if (action == "sign") {
    const char* usage = "usage: keylime-policy sign [-h] {runtime} ...\n";
    if (rest.empty()) return usage_error(usage, "keylime-policy sign", "the following arguments are required: sign");
    if (is_help(rest[0])) {
      std::fputs(kSignHelp, stdout);
      return 0;
    }
    const std::vector<std::string> sub(rest.begin() + 1, rest.end());
    if (rest[0] == "runtime") return kl::tools::run_sign_runtime(sub);
    return usage_error(usage, "keylime-policy sign", "argument sign: invalid choice: '" + rest[0] + "' (choose from 'runtime')");
  }
  return usage_error("usage: keylime-policy [-h] {create,sign} ...\n", "keylime-policy",
                     "argument action: invalid choice: '" + action + "' (choose from 'create', 'sign')");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return dispatch(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keylime-policy: unexpected error: %s\n", e.what());
    return 1;
  }
}
