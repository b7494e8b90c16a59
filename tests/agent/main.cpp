// kl_test_agent: a stand-in keylime agent for tests and demos.
//   kl_test_agent register --registrar HOST:PORT --uuid ID [--tcti CONF | --software] [--ek rsa|ecc]
//                          [--style rust|python] [--api 2.6] [--contact-ip IP] [--contact-port N]
//                          [--mtls-cert FILE]
// Prints the outcome as JSON; exit 0 on success, 1 on a refused/failed exchange, 2 on bad usage.
// Subcommands are a table so that `serve` (the agent API for the verifier) can be added beside `register`.
#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/service/http/client.hpp"

namespace {

using Args = std::map<std::string, std::string>;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --key value pairs; flags without a value (--software) map to "1".
Args parse_args(const std::vector<std::string>& argv, const std::vector<std::string>& flags) {
  Args args;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument: " + a);
    const std::string key = a.substr(2);
    if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
      args[key] = "1";
    } else {
      if (i + 1 >= argv.size()) throw UsageError("missing value for " + a);
      args[key] = argv[++i];
    }
  }
  return args;
}

std::string need(const Args& args, const std::string& key) {
  auto it = args.find(key);
  if (it == args.end() || it->second.empty()) throw UsageError("--" + key + " is required");
  return it->second;
}

std::string get(const Args& args, const std::string& key, const std::string& fallback) {
  auto it = args.find(key);
  return it == args.end() ? fallback : it->second;
}

std::pair<std::string, std::uint16_t> host_port(const std::string& hp) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("expected HOST:PORT, got " + hp);
  std::string host = hp.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(hp.substr(colon + 1));
  } catch (...) {
    throw UsageError("bad port in " + hp);
  }
  if (port <= 0 || port > 65535) throw UsageError("bad port in " + hp);
  return {host, static_cast<std::uint16_t>(port)};
}

std::unique_ptr<kl::testing::AgentIdentity> make_identity(const Args& args) {
  const bool ecc = get(args, "ek", "rsa") == "ecc";
  if (args.count("software")) {
    return std::make_unique<kl::testing::SoftwareAgent>(ecc ? kl::testing::SoftwareAgent::EkAlg::ecc_p256
                                                            : kl::testing::SoftwareAgent::EkAlg::rsa2048);
  }
  return std::make_unique<kl::testing::TpmAgent>(
      need(args, "tcti"), ecc ? kl::testing::TpmAgent::EkAlg::ecc_p256 : kl::testing::TpmAgent::EkAlg::rsa2048);
}

int cmd_register(const std::vector<std::string>& argv) {
  const Args args = parse_args(argv, {"software"});
  kl::testing::RegisterOptions opts;
  opts.agent_id = need(args, "uuid");
  const std::string style = get(args, "style", "rust");
  if (style == "rust") {
    opts.style = kl::testing::RegisterOptions::Style::rust;
  } else if (style == "python") {
    opts.style = kl::testing::RegisterOptions::Style::python_6_7;
    opts.api_version = "2.1";   // the last Python agent speaks API 2.1
  } else {
    throw UsageError("--style must be rust or python");
  }
  opts.api_version = get(args, "api", opts.api_version);
  opts.contact_ip = get(args, "contact-ip", opts.contact_ip);
  if (args.count("contact-port")) opts.contact_port = std::stoi(args.at("contact-port"));
  if (args.count("mtls-cert")) {
    std::ifstream in(args.at("mtls-cert"));
    if (!in) throw UsageError("cannot read " + args.at("mtls-cert"));
    std::ostringstream ss;
    ss << in.rdbuf();
    opts.mtls_cert = ss.str();
  }
  if (!args.count("software") && !args.count("tcti")) throw UsageError("give --tcti CONF or --software");

  const auto [host, port] = host_port(need(args, "registrar"));
  auto identity = make_identity(args);
  kl::http::Client client(host, port);
  const auto outcome = kl::testing::register_and_activate(client, *identity, opts);
  std::cout << kl::testing::to_json(outcome).dump(2) << std::endl;
  return outcome.ok() ? 0 : 1;
}

const std::map<std::string, std::function<int(const std::vector<std::string>&)>>& commands() {
  static const std::map<std::string, std::function<int(const std::vector<std::string>&)>> table = {
      {"register", cmd_register},
  };
  return table;
}

void usage() {
  std::cerr << "usage: kl_test_agent register --registrar HOST:PORT --uuid ID [--tcti CONF | --software]\n"
               "                              [--ek rsa|ecc] [--style rust|python] [--api 2.6]\n"
               "                              [--contact-ip IP] [--contact-port N] [--mtls-cert FILE]\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  auto it = commands().find(argv[1]);
  if (it == commands().end()) {
    usage();
    return 2;
  }
  try {
    return it->second(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "kl_test_agent: " << e.what() << "\n";
    usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kl_test_agent: " << e.what() << "\n";
    return 1;
  }
}
