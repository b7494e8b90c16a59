// kl_test_agent: a stand-in keylime agent for tests and demos.
//   kl_test_agent register --registrar HOST:PORT --uuid ID [--tcti CONF | --software] [--ek rsa|ecc]
//                          [--style rust|python] [--api 2.6] [--contact-ip IP] [--contact-port N]
//                          [--mtls-cert FILE] [--ekcert-surrogate FILE] [--azure-hcl-report FILE]
//                          [--snp-vcek-key PEM --snp-chip-id HEX [--snp-vmpl N]]
// --snp-vcek-key makes the agent act as an SVSM-vTPM: it sends, in place of an EK certificate, an SEV-SNP report
// binding its EK (REPORT_DATA = SHA-512(ek_tpm)) signed with that (test) VCEK key (tests/support/snp_chain.hpp).
// Prints the outcome as JSON; exit 0 on success, 1 on a refused/failed exchange, 2 on bad usage.
//   kl_test_agent serve --uuid ID --port P [--tcti CONF | --software] [--ek rsa|ecc] [--address IP]
//                       [--ca FILE | --no-mtls] [--registrar HOST:PORT --register] [--api 2.6]
// Serves the agent API (wire-contract §4) until SIGTERM/SIGINT; prints one JSON line {"uuid","address","port",
// "mtls_cert",...} once listening (and the registration outcome when --register).
//     [--ima-log FILE] [--boot-log FILE] [--write-add-body FILE]
// With --ima-log the agent serves that ascii measurement list and extends PCR 10 for each line, also for lines
// appended while it runs (the file is watched); --boot-log extends the PCRs from a binary UEFI event log and
// serves it; --write-add-body writes the tenant's POST /agents body for this agent (tpm_policy, and a runtime
// policy made from the IMA log as it was at start). Revocation notifications received are printed as JSON lines.
//   kl_test_agent ima-line --path P --content TEXT    prints an ima-ng line for a file with that content
//   kl_test_agent fleet --count N [--uuid-prefix P] [--port P] [--ca FILE | --no-mtls] [--registrar HOST:PORT
//                       --register] [--threads N]
// Serves N software agents on 127.1.x.y; prints one JSON line per agent ({"uuid","address","port","aik_tpm"}),
// then {"fleet":"ready",...}.
// Subcommands are a table so that `serve` (the agent API for the verifier) can be added beside `register`.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <csignal>
#include <thread>

#include "support/tenant_add_body.hpp"
#include "agent/agent_server.hpp"
#include "agent/evidence_logs.hpp"
#include "agent/fleet.hpp"
#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "agent/tpm_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "common/service/http/client.hpp"
#include "support/snp_chain.hpp"

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
  // EK-certificate surrogates (raw bytes: an SEV-SNP report / Azure HCL report), sent instead of the EK certificate.
  auto read_binary = [&](const std::string& key) {
    std::ifstream in(args.at(key), std::ios::binary);
    if (!in) throw UsageError("cannot read " + args.at(key));
    return kl::Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  if (args.count("ekcert-surrogate")) opts.ekcert_surrogate = read_binary("ekcert-surrogate");
  if (args.count("azure-hcl-report")) opts.azure_hcl_report = read_binary("azure-hcl-report");
  if (!args.count("software") && !args.count("tcti")) throw UsageError("give --tcti CONF or --software");

  const auto [host, port] = host_port(need(args, "registrar"));
  auto identity = make_identity(args);
  if (args.count("snp-vcek-key")) {
    std::ifstream in(args.at("snp-vcek-key"));
    if (!in) throw UsageError("cannot read " + args.at("snp-vcek-key"));
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    snptest::ReportSpec spec;
    const auto chip = kl::hex_decode(need(args, "snp-chip-id"));
    if (!chip || chip->size() != 64) throw UsageError("--snp-chip-id must be 128 hex digits");
    spec.chip_id = *chip;
    spec.vmpl = static_cast<std::uint32_t>(std::stoul(get(args, "snp-vmpl", "0")));
    opts.ekcert_surrogate =
        snptest::surrogate_report(snptest::private_key_from_pem(pem).get(), identity->ek_tpm2b_public(), spec);
  }
  kl::http::Client client(host, port);
  const auto outcome = kl::testing::register_and_activate(client, *identity, opts);
  std::cout << kl::testing::to_json(outcome).dump(2) << std::endl;
  return outcome.ok() ? 0 : 1;
}

// Blocks until SIGTERM or SIGINT (sigwait: no handler touching global state).
void wait_for_termination() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
}

// Blocked in every thread (servers start theirs after this), so sigwait receives them.
void block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int cmd_serve(const std::vector<std::string>& argv) {
  const Args args = parse_args(argv, {"software", "register", "no-mtls"});
  const std::string ima_log = get(args, "ima-log", "");
  const std::string boot_log = get(args, "boot-log", "");
  if (!args.count("software") && !args.count("tcti")) throw UsageError("give --tcti CONF or --software");
  if (args.count("register") && !args.count("registrar")) throw UsageError("--register needs --registrar HOST:PORT");
  block_termination_signals();
  kl::testing::AgentServerOptions so;
  so.uuid = need(args, "uuid");
  so.address = get(args, "address", "127.0.0.1");
  so.port = static_cast<std::uint16_t>(std::stoi(need(args, "port")));
  so.mtls = !args.count("no-mtls");
  so.trusted_client_ca_file = get(args, "ca", "");
  const bool ecc = get(args, "ek", "rsa") == "ecc";
  std::unique_ptr<kl::testing::AgentIdentity> identity;
  std::unique_ptr<kl::testing::AgentServer> server;
  if (args.count("software")) {
    auto sw = std::make_unique<kl::testing::SoftwareAgent>(ecc ? kl::testing::SoftwareAgent::EkAlg::ecc_p256
                                                               : kl::testing::SoftwareAgent::EkAlg::rsa2048);
    server = std::make_unique<kl::testing::AgentServer>(so, *sw);
    identity = std::move(sw);
  } else {
    auto tpm = std::make_unique<kl::testing::TpmAgent>(
        need(args, "tcti"), ecc ? kl::testing::TpmAgent::EkAlg::ecc_p256 : kl::testing::TpmAgent::EkAlg::rsa2048);
    server = std::make_unique<kl::testing::AgentServer>(so, *tpm);
    identity = std::move(tpm);
  }
  // The IMA log: lines already in the file are measured now, later ones as they are appended.
  std::size_t ima_consumed = 0;
  std::vector<kl::testing::ImaLine> initial_lines;
  auto feed_ima = [&](bool initial) {
    if (ima_log.empty()) return;
    std::ifstream in(ima_log, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (all.size() < ima_consumed) ima_consumed = 0;   // truncated: start over (a test, not a kernel)
    for (std::size_t nl; (nl = all.find('\n', ima_consumed)) != std::string::npos; ima_consumed = nl + 1) {
      const std::string line = all.substr(ima_consumed, nl - ima_consumed);
      if (line.empty()) continue;
      try {
        const auto l = kl::testing::ima_line_from_text(line);
        server->measure(l);
        if (initial) initial_lines.push_back(l);
      } catch (const std::exception& e) {
        std::cerr << "kl_test_agent: skipping IMA line (" << e.what() << "): " << line << "\n";
      }
    }
  };
  feed_ima(true);
  if (!boot_log.empty()) {
    std::ifstream in(boot_log, std::ios::binary);
    if (!in) throw UsageError("cannot read " + boot_log);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    server->measure_boot(kl::Bytes(all.begin(), all.end()));
  }
  server->start();
  nlohmann::json out = {{"uuid", so.uuid},
                        {"address", so.address},
                        {"port", server->port()},
                        {"mtls_cert", server->mtls_cert_or_disabled()},
                        {"payload_pubkey", server->api().payload_pubkey_pem()}};
  int rc = 0;
  if (args.count("register")) {
    kl::testing::RegisterOptions ro;
    ro.agent_id = so.uuid;
    ro.contact_ip = so.address;
    ro.contact_port = server->port();
    ro.mtls_cert = server->mtls_cert_or_disabled();
    ro.api_version = get(args, "api", ro.api_version);
    const auto [host, port] = host_port(need(args, "registrar"));
    kl::http::Client client(host, port);
    const auto outcome = kl::testing::register_and_activate(client, *identity, ro);
    out["registration"] = kl::testing::to_json(outcome);
    if (!outcome.ok()) rc = 1;
  }
  if (args.count("write-add-body")) {
    // What keylime_tenant -c add would send for this agent (wire-contract §3.2).
    std::string mask = ima_log.empty() ? "0x0" : "0x400";
    nlohmann::json body = kl::testing::tenant_add_body(kl::base64_encode(identity->ak_tpm2b_public()), server->port(),
                                                       server->mtls_cert_or_disabled(),
                                                       nlohmann::json{{"mask", mask}}.dump());
    body["v"] = nullptr;
    body["cloudagent_ip"] = so.address;
    if (!ima_log.empty())
      body["runtime_policy"] = kl::base64_encode(kl::as_bytes(kl::testing::runtime_policy_for(initial_lines).dump()));
    body["accept_tpm_hash_algs"] = {"sha512", "sha384", "sha256"};
    body["accept_tpm_signing_algs"] = {"ecschnorr", "rsassa", "ecdsa"};
    std::ofstream(args.at("write-add-body")) << body.dump(2) << "\n";
  }
  std::cout << out.dump() << std::endl;
  if (rc != 0) return rc;
  // Until SIGTERM/SIGINT: pick up appended IMA lines, print revocations received.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  std::size_t printed = 0;
  for (;;) {
    timespec ts{0, 200 * 1000 * 1000};
    if (sigtimedwait(&set, nullptr, &ts) > 0) break;
    feed_ima(false);
    const auto revs = server->api().revocations();
    for (; printed < revs.size(); ++printed)
      std::cout << nlohmann::json{{"revocation", revs[printed]}}.dump() << std::endl;
  }
  server->stop();
  return 0;
}

int cmd_ima_line(const std::vector<std::string>& argv) {
  const Args args = parse_args(argv, {});
  std::cout << kl::testing::ima_ng_line(need(args, "path"), need(args, "content")).text << "\n";
  return 0;
}

int cmd_fleet(const std::vector<std::string>& argv) {
  const Args args = parse_args(argv, {"register", "no-mtls"});
  if (args.count("register") && !args.count("registrar")) throw UsageError("--register needs --registrar HOST:PORT");
  block_termination_signals();
  kl::testing::FleetOptions fo;
  fo.agents = static_cast<std::size_t>(std::stoul(need(args, "count")));
  fo.uuid_prefix = get(args, "uuid-prefix", fo.uuid_prefix);
  fo.port = static_cast<std::uint16_t>(std::stoi(get(args, "port", "0")));
  fo.mtls = !args.count("no-mtls");
  fo.trusted_client_ca_file = get(args, "ca", "");
  fo.threads = static_cast<unsigned>(std::stoul(get(args, "threads", "1")));
  kl::testing::Fleet fleet(fo);
  fleet.start();
  std::unique_ptr<kl::http::Client> client;
  if (args.count("register")) {
    const auto [host, port] = host_port(need(args, "registrar"));
    client = std::make_unique<kl::http::Client>(host, port);
  }
  int failed = 0;
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    auto& a = fleet.agent(i);
    nlohmann::json line = {{"uuid", a.uuid},
                           {"address", a.address},
                           {"port", a.port},
                           {"aik_tpm", kl::base64_encode(a.identity->ak_tpm2b_public())}};
    if (client) {
      kl::testing::RegisterOptions ro;
      ro.agent_id = a.uuid;
      ro.contact_ip = a.address;
      ro.contact_port = a.port;
      ro.mtls_cert = fleet.mtls_cert_or_disabled();
      const auto outcome = kl::testing::register_and_activate(*client, *a.identity, ro);
      if (!outcome.ok()) {
        ++failed;
        line["registration"] = kl::testing::to_json(outcome);
      }
    }
    std::cout << line.dump() << "\n";
  }
  std::cout << nlohmann::json{{"fleet", "ready"}, {"agents", fleet.size()}, {"registration_failures", failed},
                              {"mtls_cert", fleet.mtls_cert_or_disabled()}}
                   .dump()
            << std::endl;
  wait_for_termination();
  fleet.stop();
  std::cerr << "fleet: quotes served " << fleet.quotes_served() << ", unrouted requests " << fleet.requests_unrouted()
            << "\n";
  return 0;
}

const std::map<std::string, std::function<int(const std::vector<std::string>&)>>& commands() {
  static const std::map<std::string, std::function<int(const std::vector<std::string>&)>> table = {
      {"register", cmd_register},
      {"serve", cmd_serve},
      {"fleet", cmd_fleet},
      {"ima-line", cmd_ima_line},
  };
  return table;
}

void usage() {
  std::cerr << "usage: kl_test_agent register --registrar HOST:PORT --uuid ID [--tcti CONF | --software]\n"
               "                              [--ek rsa|ecc] [--style rust|python] [--api 2.6]\n"
               "                              [--contact-ip IP] [--contact-port N] [--mtls-cert FILE]\n"
               "                              [--ekcert-surrogate FILE] [--azure-hcl-report FILE]\n"
               "                              [--snp-vcek-key PEM --snp-chip-id HEX [--snp-vmpl N]]\n"
               "       kl_test_agent serve --uuid ID --port P [--tcti CONF | --software] [--ek rsa|ecc]\n"
               "                           [--address IP] [--ca FILE | --no-mtls] [--registrar HOST:PORT --register]\n"
               "                           [--ima-log FILE] [--boot-log FILE] [--write-add-body FILE]\n"
               "       kl_test_agent ima-line --path P --content TEXT\n"
               "       kl_test_agent fleet --count N [--uuid-prefix P] [--port P] [--ca FILE | --no-mtls]\n"
               "                           [--registrar HOST:PORT --register] [--threads N]\n";
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
