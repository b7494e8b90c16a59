// Hostile requests over real sockets against real keylime_registrar (plain and mTLS ports) and keylime_verifier
// (mTLS tenant port): every malformed or abusive request gets a 4xx (never a 5xx), a good client is served
// throughout (checked between every few cases), and the SQLite files are byte-for-byte unchanged.
// Cases are generated from tables: (raw HTTP | paths | bodies x fields x bad values) x targets.
#include <catch2/catch.hpp>
#include "support/tenant_add_body.hpp"

#include <chrono>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/registration.hpp"
#include "agent/software_agent.hpp"
#include "common/attest/crypto/bytes.hpp"
#include "integration/hostile/deployment.hpp"
#include "integration/hostile/raw_conn.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAgent = "hostile-agent-1";       // registered before the cases run
constexpr const char* kProbeId = "hostile-probe-agent";  // never registered
constexpr std::size_t kMaxUpload = 1 << 20;

const std::string kLimits = "max_upload_size = " + std::to_string(kMaxUpload) + "\nserver_request_timeout = 2\n";

std::string random_b64(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  kl::Bytes b(n);
  for (auto& c : b) c = static_cast<std::uint8_t>(rng());
  return kl::base64_encode(b);
}

std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& extra_headers = "", const std::string& content_type = "application/json") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty() && !body.empty()) r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
  return r;
}

struct Target {
  std::string name;
  std::uint16_t port;
  const hostile::TlsContext* tls;
  std::string probe;       // a path that answers 4xx on this target however leniently the request is read
  std::string api;         // version prefix used for this service's routes
};

struct Case {
  std::string name;
  std::string bytes;
  bool may_close = false;  // TLS-level garbage may be answered by closing the connection
  // An HTTP method the server does not know at all is answered 501 (wire contract §0.2, as upstream); the one
  // 5xx that is not a server failure.
  bool unknown_method = false;
};

// Bad JSON documents (any JSON-reading route must answer them with a 4xx).
std::vector<std::pair<std::string, std::string>> bad_json_docs() {
  std::vector<std::pair<std::string, std::string>> d = {
      {"empty", ""},
      {"open brace", "{"},
      {"close brace", "}"},
      {"array", "[]"},
      {"null", "null"},
      {"number", "1"},
      {"string", "\"str\""},
      {"missing value", "{\"a\":}"},
      {"single quotes", "{'a': 1}"},
      {"trailing garbage", "{}x"},
      {"trailing comma", "{\"a\": 1,}"},
      {"comment", "/* x */ {}"},
      {"NaN", "{\"a\": NaN}"},
      {"Infinity", "{\"a\": Infinity}"},
      {"huge exponent", "{\"a\": 1e999999}"},
      {"huge integer", "{\"a\": 123456789012345678901234567890123456789012345678901234567890}"},
      {"invalid utf8", "{\"a\": \"\xff\xfe\xfd\"}"},
      {"lone surrogate", "{\"a\": \"\\ud800\"}"},
      {"nul in string", std::string("{\"a\": \"x\0y\"}", 13)},
      {"bom", "\xef\xbb\xbf{}"},
      {"deep array", std::string(100000, '[') + std::string(100000, ']')},
      {"deep object", [] {
         std::string s;
         for (int i = 0; i < 20000; ++i) s += "{\"a\":";
         s += "1";
         s += std::string(20000, '}');
         return s;
       }()},
      {"unterminated string", "{\"a\": \"abc"},
      {"binary", std::string("\x00\x01\x02\x03\x80\x90", 6)},
  };
  return d;
}

// Bad values for a field, by what the field should be.
std::vector<std::pair<std::string, json>> bad_values(const std::string& kind) {
  std::vector<std::pair<std::string, json>> v = {
      {"object", json{{"a", 1}}},
      {"array", json::array({1, 2})},
      {"deep", json::parse(std::string(200, '[') + std::string(200, ']'))},
  };
  if (kind != "int") {
    v.push_back({"int", 123});
    v.push_back({"bool", true});
    v.push_back({"float", 1.5});
    v.push_back({"huge int", json::parse("18446744073709551615")});
  }
  if (kind == "b64") {
    v.push_back({"not base64", "!!!not base64!!!"});
    v.push_back({"short base64", "AAAA"});
    v.push_back({"random bytes", random_b64(300, 1)});
    v.push_back({"bad length prefix", kl::base64_encode(kl::Bytes{0xff, 0xff, 0x00, 0x01})});
  } else if (kind == "cert") {
    v.push_back({"truncated pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"});
    v.push_back({"garbage text", "not a certificate"});
    v.push_back({"random der", random_b64(500, 2)});
  } else if (kind == "ip") {
    v.push_back({"too long", std::string(300, 'a')});
  } else if (kind == "int") {
    v.push_back({"negative", -1});
    v.push_back({"too big", 65536});
    v.push_back({"huge", json::parse("18446744073709551615")});
    v.push_back({"very negative", json::parse("-9223372036854775808")});
    v.push_back({"float", 80.5});
    v.push_back({"text", "abc"});
    v.push_back({"text negative", "-1"});
    v.push_back({"text too long", "999999"});
    v.push_back({"bool", true});
  } else if (kind == "hex") {
    v.push_back({"not hex", "zz"});
    v.push_back({"wrong length", "00ff"});
    v.push_back({"very long", std::string(10000, 'a')});
  } else if (kind == "jsontext") {
    v.push_back({"not json", "{not json"});
    v.push_back({"json array", "[1, 2]"});
    v.push_back({"bad pcr", "{\"99\": [\"00\"], \"mask\": \"0x1\"}"});
  } else if (kind == "list") {
    v.push_back({"string", "sha256"});
    v.push_back({"list of ints", json::array({1, 2})});
  }
  return v;
}

struct Stats {
  int cases = 0, good_checks = 0;
  std::vector<std::string> failures;
};

class Runner {
 public:
  Runner(hostile::Deployment& d, std::vector<Target> targets, const hostile::TlsContext& admin)
      : d_(d), targets_(std::move(targets)), admin_(admin) {}

  // One case on one target: a fresh connection, the bytes, one reply.
  void run(const Target& t, const Case& c) {
    ++stats.cases;
    hostile::RawConn conn(t.port, t.tls);
    std::string where = t.name + " / " + c.name;
    if (!conn.handshake_ok()) {
      stats.failures.push_back(where + ": connect/handshake failed");
      return;
    }
    conn.send(c.bytes);  // the server may close early (e.g. 413 before the whole body): not an error
    auto r = conn.read_reply(8s);
    if (r.status == 0) {
      if (!(c.may_close && r.closed)) stats.failures.push_back(where + ": no response" + (r.closed ? " (closed)" : ""));
    } else if ((r.status < 400 || r.status > 499) && !(c.unknown_method && r.status == 501)) {
      stats.failures.push_back(where + ": status " + std::to_string(r.status) + " " + r.body.substr(0, 200));
    }
    if (++since_good_ >= 10) good_client();
  }

  // A well-behaved client on every service must still be answered promptly.
  void good_client() {
    since_good_ = 0;
    ++stats.good_checks;
    const auto t0 = std::chrono::steady_clock::now();
    struct Probe {
      std::uint16_t port;
      const hostile::TlsContext* tls;
      std::string path;
    };
    for (const Probe& p : {Probe{d_.registrar_port(), nullptr, "/version"},
                           Probe{d_.registrar_tls_port(), &admin_, std::string("/v2.1/agents/") + kAgent},
                           Probe{d_.verifier_port(), &admin_, "/v2.6/agents/"}}) {
      hostile::RawConn conn(p.port, p.tls);
      conn.send(request("GET", p.path));
      auto r = conn.read_reply(5s);
      if (r.status != 200)
        stats.failures.push_back("good client GET " + p.path + " on port " + std::to_string(p.port) + ": status " +
                                 std::to_string(r.status));
    }
    if (std::chrono::steady_clock::now() - t0 > 3s) stats.failures.push_back("good client took more than 3 s");
  }

  Stats stats;

 private:
  hostile::Deployment& d_;
  std::vector<Target> targets_;
  const hostile::TlsContext& admin_;
  int since_good_ = 0;
};

std::vector<Case> invalid_http(const Target& t) {
  const std::string p = t.probe;
  std::vector<Case> c = {
      {"garbage line", "garbage\r\n\r\n"},
      {"method only", "GET\r\n\r\n"},
      {"no version", "GET " + p + "\r\n\r\n"},
      {"http/9.9", "GET " + p + " HTTP/9.9\r\nHost: a\r\n\r\n"},
      {"http/0.9 style", "GET " + p + " HTTP/0.9\r\n\r\n"},
      {"lowercase version", "GET " + p + " http/1.1\r\nHost: a\r\n\r\n"},
      {"bad method token", "G@T " + p + " HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"unknown method", "BREW " + p + " HTTP/1.1\r\nHost: a\r\n\r\n", false, true},
      {"header without colon", "GET " + p + " HTTP/1.1\r\nHost a\r\n\r\n"},
      {"space before colon", "GET " + p + " HTTP/1.1\r\nHost : a\r\n\r\n"},
      {"nul in header", "GET " + p + " HTTP/1.1\r\nX-A: a" + std::string(1, '\0') + "b\r\n\r\n"},
      {"bare LF", "GET " + p + " HTTP/1.1\nHost: a\n\n"},
      {"content-length text", "POST " + p + " HTTP/1.1\r\nContent-Length: abc\r\n\r\n"},
      {"content-length negative", "POST " + p + " HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
      {"content-length overflow", "POST " + p + " HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"},
      {"two content-lengths", "POST " + p + " HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"},
      {"bad chunk size", "POST " + p + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
      {"chunk size overflow", "POST " + p + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"},
      {"unknown transfer-encoding", "POST " + p + " HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}"},
      {"chunked and content-length",
       "POST " + p + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
      {"huge header", "GET " + p + " HTTP/1.1\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n"},
      {"many headers", [&] {
         std::string s = "GET " + p + " HTTP/1.1\r\n";
         for (int i = 0; i < 3000; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
         return s + "\r\n";
       }()},
      {"huge url", "GET /" + std::string(40000, 'a') + " HTTP/1.1\r\n\r\n"},
      {"absolute-form target", "GET http://evil.example" + p + " HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"asterisk target", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"connect", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: a\r\n\r\n", false, true},
      {"tls hello on plain", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + std::string(160, 'A')},
      {"oversized declared body", "POST " + p + " HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " +
                                      std::to_string(kMaxUpload * 4) + "\r\n\r\n{"},
      {"oversized sent body", request("POST", t.api + "/agents/" + kProbeId, "{\"a\":\"" + std::string(kMaxUpload + 10, 'a') + "\"}")},
      {"request smuggling header", "GET " + p + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"},
  };
  return c;
}

std::vector<Case> path_cases(const Target& t) {
  const std::string a = t.api;
  std::vector<std::string> paths = {
      a + "/agents/../../../etc/passwd",
      a + "/agents/..%2f..%2f..%2fetc%2fpasswd",
      a + "/agents/%2e%2e",
      a + "/agents/%2e%2e%2f" + kAgent,
      a + "/agents/" + kAgent + "%00",
      a + "/agents/" + kAgent + "%2f..",
      a + "/agents/a%00b",
      a + "/agents/" + std::string(5000, 'x'),
      a + "/agents/%c3%a9%e2%80%ae",
      a + "/agents/%ff%fe",
      a + "/agents/" + kProbeId + "/x/y/z",
      a + "/agents/" + kProbeId + "/activate/extra",
      a + "//agents/" + kProbeId,
      "/v9.9/agents/" + std::string(kAgent),
      "/v2.99/agents/" + std::string(kAgent),
      "/v2.1a/agents/" + std::string(kAgent),
      "/v-1/agents",
      "/v/agents",
      "/v0.0/agents",
      "/v99999999999999999999.1/agents",
      "/%",
      "/%zz",
      "/../../etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/etc/passwd",
      a + "/allowlists/..%2f..%2fetc",
      a + "/mbpolicies/%2e%2e",
  };
  std::vector<Case> c;
  for (const auto& p : paths) {
    c.push_back({"GET " + p.substr(0, 60), request("GET", p)});
    c.push_back({"DELETE " + p.substr(0, 60), request("DELETE", p)});
  }
  for (const char* m : {"PATCH", "TRACE", "PROPFIND"})
    c.push_back({std::string(m) + " agent", request(m, a + "/agents/" + kAgent), false, true});
  return c;
}

std::vector<Case> registration_cases(const std::string& api, const json& base) {
  std::vector<Case> c;
  const std::string path = api + "/agents/" + kProbeId;
  for (const auto& [name, doc] : bad_json_docs()) c.push_back({"register bad json: " + name, request("POST", path, doc)});
  c.push_back({"register {}", request("POST", path, "{}")});
  c.push_back({"register duplicate key",
               request("POST", path, "{\"aik_tpm\":\"AAAA\",\"aik_tpm\":" + base["aik_tpm"].dump() + "}")});
  c.push_back({"register aik_tpm null", request("POST", path, [&] {
                 json b = base;
                 b["aik_tpm"] = nullptr;
                 return b.dump();
               }())});
  c.push_back({"register without aik_tpm", request("POST", path, [&] {
                 json b = base;
                 b.erase("aik_tpm");
                 return b.dump();
               }())});
  c.push_back({"register without ek", request("POST", path, [&] {
                 json b = base;
                 b.erase("ek_tpm");
                 b.erase("ekcert");
                 return b.dump();
               }())});
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"aik_tpm", "b64"}, {"ek_tpm", "b64"},   {"iak_tpm", "b64"},       {"idevid_tpm", "b64"},
      {"ekcert", "cert"}, {"iak_cert", "cert"}, {"idevid_cert", "cert"}, {"mtls_cert", "cert"},
      {"ip", "ip"},       {"port", "int"},      {"iak_attest", "b64x"},  {"iak_sign", "b64x"}};
  for (const auto& [field, kind] : fields) {
    for (const auto& [vname, value] : bad_values(kind == "b64x" ? "object" : kind)) {
      json b = base;
      b[field] = value;
      c.push_back({"register " + field + " = " + vname, request("POST", path, b.dump())});
    }
  }
  // v3 style: agent_id in the body.
  for (const auto& [vname, id] : std::vector<std::pair<std::string, json>>{
           {"traversal", "../../etc/passwd"}, {"int", 5}, {"empty", ""}, {"long", std::string(2000, 'a')},
           {"slash", "a/b"}, {"nul", std::string("a\0b", 3)}}) {
    json b = base;
    b["agent_id"] = id;
    c.push_back({"register v3 agent_id " + vname, request("POST", "/v3.0/agents", b.dump())});
  }
  // Activation.
  for (const auto& [vname, body] : std::vector<std::pair<std::string, std::string>>{
           {"no auth_tag", "{}"}, {"auth_tag int", "{\"auth_tag\": 5}"}, {"auth_tag not hex", "{\"auth_tag\": \"zz\"}"},
           {"auth_tag short", "{\"auth_tag\": \"00ff\"}"},
           {"auth_tag wrong", "{\"auth_tag\": \"" + std::string(96, '0') + "\"}"},
           {"auth_tag huge", "{\"auth_tag\": \"" + std::string(100000, 'a') + "\"}"},
           {"array", "[]"}, {"garbage", "garbage"}}) {
    c.push_back({"activate " + vname, request("POST", api + "/agents/" + kAgent + "/activate", body)});
    c.push_back({"activate unknown " + vname, request("PUT", api + "/agents/" + kProbeId, body)});
  }
  return c;
}

json verifier_add_body(const std::string& ak_tpm) {
  return kl::testing::tenant_add_body(ak_tpm, 9, "disabled", "{\"mask\": \"0x0\"}");
}

std::vector<Case> verifier_cases(const std::string& ak_tpm) {
  std::vector<Case> c;
  const std::string add = std::string("/v2.6/agents/") + kAgent;
  const json base = verifier_add_body(ak_tpm);
  for (const auto& [name, doc] : bad_json_docs()) c.push_back({"add agent bad json: " + name, request("POST", add, doc)});
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"v", "b64"},
      {"cloudagent_ip", "ip"},
      {"cloudagent_port", "int"},
      {"tpm_policy", "jsontext"},
      {"runtime_policy", "b64"},
      {"mb_policy", "jsontext"},
      {"metadata", "jsontext"},
      {"accept_tpm_hash_algs", "list"},
      {"accept_tpm_signing_algs", "list"},
      {"ak_tpm", "b64"},
      {"mtls_cert", "cert"},
      {"ima_sign_verification_keys", "b64"},
  };
  for (const auto& [field, kind] : fields) {
    for (const auto& [vname, value] : bad_values(kind)) {
      json b = base;
      b[field] = value;
      c.push_back({"add agent " + field + " = " + vname, request("POST", add, b.dump())});
    }
  }
  {
    json b = base;
    b["v"] = random_b64(31, 3);
    c.push_back({"add agent v wrong length", request("POST", add, b.dump())});
  }
  c.push_back({"add agent missing everything", request("POST", add, "{}")});
  c.push_back({"add unregistered agent", request("POST", std::string("/v2.6/agents/") + kProbeId, base.dump())});
  // Runtime and measured-boot policies.
  const std::string pol = "/v2.6/allowlists/hostile-policy";
  auto b64 = [](const std::string& s) { return kl::base64_encode(kl::as_bytes(s)); };
  const std::vector<std::pair<std::string, json>> policies = {
      {"not base64", json{{"runtime_policy", "!!!"}}},
      {"b64 of garbage", json{{"runtime_policy", b64("{")}}},
      {"b64 of array", json{{"runtime_policy", b64("[]")}}},
      {"schema violation", json{{"runtime_policy", b64("{\"meta\": {\"version\": \"x\"}, \"digests\": 5}")}}},
      {"bad exclude regex",
       json{{"runtime_policy",
             b64("{\"meta\":{\"version\":1,\"generator\":2},\"release\":0,\"digests\":{},\"excludes\":[\"([\"],"
                 "\"keyrings\":{},\"ima\":{\"ignored_keyrings\":[],\"log_hash_alg\":\"sha1\",\"dm_policy\":null},"
                 "\"ima-buf\":{},\"verification-keys\":\"\"}")}}},
      {"bad dsse", json{{"runtime_policy", b64("{\"payload\": 5, \"payloadType\": \"x\", \"signatures\": [1]}")}}},
      {"dsse bad payload", json{{"runtime_policy",
                                 b64("{\"payload\": \"!!\", \"payloadType\": \"application/vnd.keylime+json\","
                                     " \"signatures\": [{\"keyid\": \"a\", \"sig\": \"AAAA\"}]}")}}},
      {"policy int", json{{"runtime_policy", 5}}},
      {"tpm_policy int", json{{"runtime_policy", b64("{")}, {"tpm_policy", 5}}},
      {"key not base64", json{{"runtime_policy", b64("{}")}, {"runtime_policy_key", "!!"}}},
  };
  for (const auto& [name, body] : policies) {
    c.push_back({"runtime policy " + name, request("POST", pol, body.dump())});
    c.push_back({"runtime policy update " + name, request("PUT", pol, body.dump())});
  }
  for (const auto& [name, doc] : bad_json_docs()) c.push_back({"runtime policy bad json: " + name, request("POST", pol, doc)});
  const std::string mb = "/v2.6/mbpolicies/hostile-mb";
  for (const auto& [name, body] : std::vector<std::pair<std::string, json>>{
           {"not json", json{{"mb_policy", "{not json"}}},
           {"int", json{{"mb_policy", 5}}},
           {"array", json{{"mb_policy", json::array({"[1,2]"})}}},
           {"empty", json{{"mb_policy", ""}}},
           {"object", json{{"mb_policy", json::object()}}}}) {
    c.push_back({"mb policy " + name, request("POST", mb, body.dump())});
  }
  for (const auto& [name, doc] : bad_json_docs()) c.push_back({"mb policy bad json: " + name, request("POST", mb, doc)});
  c.push_back({"reactivate unknown", request("PUT", std::string("/v2.6/agents/") + kProbeId + "/reactivate", "{}")});
  c.push_back({"stop unknown", request("PUT", std::string("/v2.6/agents/") + kProbeId + "/stop", "{}")});
  c.push_back({"unknown action", request("PUT", std::string("/v2.6/agents/") + kAgent + "/explode", "{}")});
  c.push_back({"delete unknown agent", request("DELETE", std::string("/v2.6/agents/") + kProbeId)});
  c.push_back({"delete unknown policy", request("DELETE", "/v2.6/allowlists/nope")});
  c.push_back({"verify identity no query", request("GET", "/v2.6/verify/identity")});
  c.push_back({"verify identity bad query", request("GET", "/v2.6/verify/identity?agent_uuid=%zz&nonce=&hash_alg=md5")});
  return c;
}

}  // namespace

TEST_CASE("hostile requests: 4xx for every malformed request, good client served, databases unchanged",
          "[hostile]") {
  hostile::Deployment d({kLimits, kLimits});
  std::string detail;
  REQUIRE(d.register_agent(kAgent, &detail));
  INFO(detail);

  hostile::TlsContext admin(d.admin_tls());
  hostile::TlsContext no_cert(hostile::TlsOptions{"", "", (d.ca_dir() / "cacert.crt").string()});

  // A body that would register successfully (fresh identity) — the base the field mutations start from.
  kl::testing::SoftwareAgent fresh;
  kl::testing::RegisterOptions ro;
  ro.agent_id = kProbeId;
  const json reg_base = kl::testing::registration_body(fresh, ro);

  // Wait for the services to settle (first writes after start) before taking the fingerprint.
  std::this_thread::sleep_for(500ms);
  const std::string before = d.db_fingerprint();

  std::vector<Target> targets = {
      {"registrar plain", d.registrar_port(), nullptr, std::string("/v2.1/agents/") + kProbeId, "/v2.1"},
      {"registrar mtls", d.registrar_tls_port(), &admin, std::string("/v2.1/agents/") + kProbeId, "/v2.1"},
      {"verifier mtls", d.verifier_port(), &admin, std::string("/v2.6/agents/") + kProbeId, "/v2.6"},
  };
  Runner runner(d, targets, admin);
  runner.good_client();
  for (const auto& t : targets) {
    for (const auto& c : invalid_http(t)) runner.run(t, c);
    for (const auto& c : path_cases(t)) runner.run(t, c);
  }
  for (const auto& c : registration_cases("/v2.1", reg_base)) runner.run(targets[0], c);
  for (const auto& c : registration_cases("/v2.6", reg_base)) runner.run(targets[1], c);
  for (const auto& c : verifier_cases(reg_base["aik_tpm"].get<std::string>())) runner.run(targets[2], c);
  // Pipelined garbage: the valid first request is answered, the garbage after it gets a 400.
  for (const auto& t : targets) {
    for (const std::string& garbage : std::vector<std::string>{"garbage\r\n\r\n", "GET / HTTP/9\r\n\r\n", std::string("\x00\xff\r\n\r\n", 6)}) {
      ++runner.stats.cases;
      hostile::RawConn conn(t.port, t.tls);
      conn.send(request("GET", t.probe) + garbage);
      auto r1 = conn.read_reply(5s);
      auto r2 = conn.read_reply(5s);
      if (r1.status < 400 || r1.status > 499 || r2.status != 400)
        runner.stats.failures.push_back(t.name + " / pipelined garbage: " + std::to_string(r1.status) + ", " +
                                        std::to_string(r2.status));
    }
  }
  // Admin routes over TLS without a client certificate.
  for (const auto& t : {targets[1], targets[2]}) {
    Target nt = t;
    nt.tls = &no_cert;
    nt.name += " (no client cert)";
    for (const auto& p : path_cases(nt)) runner.run(nt, p);
  }
  runner.good_client();

  const auto& s = runner.stats;
  std::ostringstream all;
  for (const auto& f : s.failures) all << f << "\n";
  INFO("cases: " << s.cases << ", good-client checks: " << s.good_checks << "\nfailures:\n" << all.str());
  CHECK(s.cases >= 300);
  CHECK(s.failures.empty());
  CHECK(d.services_running());
  std::this_thread::sleep_for(200ms);
  CHECK(d.db_fingerprint() == before);
  WARN("hostile: " << s.cases << " cases, " << s.good_checks << " good-client checks, " << s.failures.size()
                   << " failures");
}

TEST_CASE("hostile slow clients: slowloris, idle and half-open connections are closed, others still served",
          "[hostile]") {
  hostile::Deployment d({kLimits, kLimits});
  REQUIRE(d.register_agent(kAgent));
  hostile::TlsContext admin(d.admin_tls());
  const std::string before = d.db_fingerprint();

  struct Port {
    std::string name;
    std::uint16_t port;
    const hostile::TlsContext* tls;
  };
  std::vector<Port> ports = {{"registrar plain", d.registrar_port(), nullptr},
                             {"registrar mtls", d.registrar_tls_port(), &admin},
                             {"verifier mtls", d.verifier_port(), &admin}};
  // Per port: 8 slowloris (header dripping), 4 slow bodies, 4 idle, 4 half-open partial requests.
  std::vector<std::unique_ptr<hostile::RawConn>> slow, slow_body, idle, half;
  for (const auto& p : ports) {
    for (int i = 0; i < 8; ++i) {
      slow.push_back(std::make_unique<hostile::RawConn>(p.port, p.tls));
      slow.back()->send("GET /version HTTP/1.1\r\nHost: a\r\n");
    }
    for (int i = 0; i < 4; ++i) {
      slow_body.push_back(std::make_unique<hostile::RawConn>(p.port, p.tls));
      slow_body.back()->send("POST /v2.1/agents/x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{");
      idle.push_back(std::make_unique<hostile::RawConn>(p.port, nullptr));  // TLS ports: a stalled handshake
      half.push_back(std::make_unique<hostile::RawConn>(p.port, p.tls));
      half.back()->send("POST /v2.1/agents/x HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"a\"");
      half.back()->shutdown_write();
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Keep dripping for 6 s (3x server_request_timeout) while a good client is served on every port.
  int good = 0, bad = 0;
  while (std::chrono::steady_clock::now() - t0 < 6s) {
    for (auto& c : slow) c->send("X-Drip: 1\r\n");
    for (auto& c : slow_body) c->send("a");
    for (const auto& p : ports) {
      hostile::RawConn g(p.port, p.tls);
      g.send(request("GET", p.tls ? (p.port == d.verifier_port() ? "/v2.6/agents/" : std::string("/v2.1/agents/") + kAgent)
                                  : "/version"));
      (g.read_reply(3s).status == 200 ? good : bad)++;
    }
    std::this_thread::sleep_for(300ms);
  }
  INFO("good client: " << good << " served, " << bad << " not");
  CHECK(bad == 0);
  CHECK(good >= 15);
  // Every abusive connection must have been closed by now (timeout 2 s; we kept them busy for 6 s).
  int open = 0;
  for (auto* group : {&slow, &slow_body, &idle, &half})
    for (auto& c : *group)
      if (!c->wait_closed(1500ms)) ++open;
  CHECK(open == 0);
  CHECK(d.services_running());
  CHECK(d.db_fingerprint() == before);
}
