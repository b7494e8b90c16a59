#include "common/attest/mb/test_tree.hpp"

#include <algorithm>
#include <set>
#include <string_view>
#include <stdexcept>

#include "common/attest/crypto/digest.hpp"
#include "common/attest/mb/python_repr.hpp"

namespace kl::mb::tree {
namespace {

using detail::repr;
using detail::repr_str;

class AcceptAll : public Test {
 public:
  std::string why_not(Globals&, const json&) override { return ""; }
};

class RejectAll : public Test {
 public:
  explicit RejectAll(std::string why) : why_(std::move(why)) {}
  std::string why_not(Globals&, const json&) override { return why_; }

 private:
  std::string why_;
};

class And : public Test {
 public:
  explicit And(std::vector<TestPtr> t) : tests_(std::move(t)) {}
  std::string why_not(Globals& g, const json& s) override {
    for (auto& t : tests_)
      if (auto r = t->why_not(g, s); !r.empty()) return r;
    return "";
  }

 private:
  std::vector<TestPtr> tests_;
};

class Or : public Test {
 public:
  explicit Or(std::vector<TestPtr> t) : tests_(std::move(t)) {}
  std::string why_not(Globals& g, const json& s) override {
    if (tests_.empty()) return "does not pass empty disjunction";
    std::string joined;
    for (std::size_t i = 0; i < tests_.size(); ++i) {
      auto r = tests_[i]->why_not(g, s);
      if (r.empty()) return "";
      joined += (i ? ", " : "") + r;
    }
    return "[" + joined + "]";
  }

 private:
  std::vector<TestPtr> tests_;
};

class Field : public Test {
 public:
  Field(std::string n, TestPtr t, bool show) : name_(std::move(n)), test_(std::move(t)), show_(show) {}
  std::string why_not(Globals& g, const json& s) override {
    if (!s.is_object()) return "is not a dict";
    auto it = s.find(name_);
    if (it == s.end()) return "has no " + repr_str(name_) + " field";
    auto r = test_->why_not(g, *it);
    if (!r.empty() && show_) return name_ + " " + r;
    return r;
  }

 private:
  std::string name_;
  TestPtr test_;
  bool show_;
};

class Iterate : public Test {
 public:
  Iterate(TestPtr t, bool show) : test_(std::move(t)), show_(show) {}
  std::string why_not(Globals& g, const json& s) override {
    if (!s.is_array()) return "is not a list";
    for (std::size_t i = 0; i < s.size(); ++i) {
      auto r = test_->why_not(g, s[i]);
      if (r.empty()) continue;
      return show_ ? repr(s[i]) + " " + r : "[" + std::to_string(i) + "] " + r;
    }
    return "";
  }

 private:
  TestPtr test_;
  bool show_;
};

class Tuple : public Test {
 public:
  explicit Tuple(std::vector<TestPtr> t) : tests_(std::move(t)) {}
  std::string why_not(Globals& g, const json& s) override {
    if (!s.is_array()) return "is not a list";
    std::size_t n = s.size(), m = tests_.size();
    // The leading space is upstream's.
    if (n > m) return " is longer (" + std::to_string(n) + ") than the applicable tests (" + std::to_string(m) + ")";
    if (n < m) return " is shorter (" + std::to_string(n) + ") than the applicable tests (" + std::to_string(m) + ")";
    for (std::size_t i = 0; i < m; ++i)
      if (auto r = tests_[i]->why_not(g, s[i]); !r.empty()) return "[" + std::to_string(i) + "] " + r;
    return "";
  }

 private:
  std::vector<TestPtr> tests_;
};

class StringEqual : public Test {
 public:
  explicit StringEqual(std::string e) : expected_(std::move(e)) {}
  std::string why_not(Globals&, const json& s) override {
    if (!s.is_string()) return "is not a str";
    if (s.get_ref<const std::string&>() == expected_) return "";
    // Or() collects the reasons of every failed alternative (a certificate compared with each db entry), so
    // the quoted text is built once per test rather than once per comparison.
    if (reason_.empty()) reason_ = "is not " + repr_str(expected_);
    return reason_;
  }

 private:
  std::string expected_;
  std::string reason_;
};

class RegExp : public Test {
 public:
  RegExp(std::string p, bool dotall) : re_(std::move(p), dotall) {}
  std::string why_not(Globals&, const json& s) override {
    if (!s.is_string()) return "is not a str";
    if (re_.matches(s.get_ref<const std::string&>())) return "";
    return "does not match " + re_.pattern();
  }

 private:
  detail::FullMatch re_;
};

class Digests : public Test {
 public:
  explicit Digests(const std::vector<Digest>& good) {
    for (const auto& d : good)
      for (const auto& entry : d) {
        // Not a structured binding: clang before 16 cannot capture one in a lambda (the fuzz build uses clang).
        const auto& alg = entry.first;
        const auto& hex = entry.second;
        auto it = std::find_if(good_.begin(), good_.end(), [&](const auto& p) { return p.first == alg; });
        if (it == good_.end()) good_.push_back({alg, {hex}});
        else if (std::find(it->second.begin(), it->second.end(), hex) == it->second.end()) it->second.push_back(hex);
      }
  }
  std::string why_not(Globals&, const json& s) override {
    if (!s.is_object()) return "is not a dict";
    auto dl = s.find("Digests");
    if (dl == s.end()) return "has no Digests";
    if (!dl->is_array()) return "Digests is not a list";
    for (std::size_t i = 0; i < dl->size(); ++i) {
      const auto& d = (*dl)[i];
      std::string idx = std::to_string(i);
      if (!d.is_object()) return "Digests[" + idx + "] is " + repr(d) + ", not a dict";
      if (!d.contains("AlgorithmId")) return "digest " + idx + " has no AlgorithmId";
      const auto& alg = d["AlgorithmId"];
      if (!alg.is_string()) return "Digests[" + idx + "].AlgorithmId is " + repr(alg) + ", not a str";
      if (!d.contains("Digest")) return "digest " + idx + " has no Digest";
      const auto& hv = d["Digest"];
      if (!hv.is_string()) return "Digests[" + idx + "].Digest is " + repr(hv) + ", not a str";
      auto it = std::find_if(good_.begin(), good_.end(), [&](const auto& p) { return p.first == alg.get_ref<const std::string&>(); });
      if (it == good_.end()) continue;
      if (std::find(it->second.begin(), it->second.end(), hv.get_ref<const std::string&>()) != it->second.end())
        return "";
    }
    std::string text = "{";
    for (std::size_t i = 0; i < good_.size(); ++i)
      text += (i ? ", " : "") + repr_str(good_[i].first) + ": " + detail::repr_str_set(good_[i].second);
    return "has no digest approved by " + text + "}";
  }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> good_;
};

class Variable : public Test {
 public:
  Variable(std::string vn, std::string un_regex, TestPtr t)
      : vn_(std::move(vn)), un_(std::move(un_regex)), test_(std::move(t)) {}
  std::string why_not(Globals& g, const json& s) override {
    if (!s.is_object()) return "is not a dict";
    auto ev = s.find("Event");
    if (ev == s.end()) return "has no Event field";
    if (!ev->is_object()) return "Event is not a dict";
    if (!ev->contains("VariableName")) return "Event has no VariableName field";
    const auto& vn = (*ev)["VariableName"];
    if (!(vn.is_string() && vn.get_ref<const std::string&>() == vn_))
      return "Event.VariableName is " + (vn.is_string() ? vn.get<std::string>() : repr(vn)) + " rather than " + vn_;
    if (!ev->contains("UnicodeName")) return "Event has no UnicodeName field";
    if (!ev->contains("VariableData")) return "Event has no VariableData field";
    const auto& un = (*ev)["UnicodeName"];
    if (!un.is_string()) return "Event.UnicodeName is not a str";
    if (!un_.matches(un.get_ref<const std::string&>()))
      return "Event.UnicodeName, " + un.get<std::string>() + ", does not match " + un_.pattern();
    return test_->why_not(g, (*ev)["VariableData"]);
  }

 private:
  std::string vn_;
  detail::FullMatch un_;
  TestPtr test_;
};

class Once : public Test {
 public:
  explicit Once(TestPtr t) : test_(std::move(t)) {}
  std::string why_not(Globals& g, const json& s) override {
    if (executed_) return "test was already run once";
    executed_ = true;
    return test_->why_not(g, s);
  }

 private:
  TestPtr test_;
  bool executed_ = false;
};

// tests.SupersetOfDicts over (SignatureOwner, SignatureData). dbx lists run to hundreds of entries on both
// sides, so membership goes through ordered sets rather than pairwise comparison.
class SignatureSuperset : public Test {
 public:
  explicit SignatureSuperset(const std::vector<Signature>& reqs) {
    for (const auto& r : reqs)
      if (seen_.insert({r.owner, r.data}).second) reqs_.push_back(r);  // keep first-seen order for the message
  }
  std::string why_not(Globals&, const json& s) override {
    if (!s.is_array()) return "is not a list";
    std::set<std::pair<std::string_view, std::string_view>> actual;
    std::vector<std::string> owned;  // non-string members, dumped
    owned.reserve(s.size() * 2);
    for (const auto& e : s) {
      if (!e.is_object()) return "member " + repr(e) + " is not a dict";
      if (e.size() != 2 || !e.contains("SignatureOwner") || !e.contains("SignatureData"))
        return "member " + repr(e) + " does not have the right set of field names ('SignatureOwner', 'SignatureData')";
      const auto& o = e["SignatureOwner"];
      const auto& d = e["SignatureData"];
      if (!o.is_string() || !d.is_string()) continue;  // cannot equal a string requirement
      actual.insert({o.get_ref<const std::string&>(), d.get_ref<const std::string&>()});
    }
    std::string missing;
    for (const auto& r : reqs_)
      if (!actual.count({r.owner, r.data}))
        missing += (missing.empty() ? "" : ", ") + std::string("(") + repr_str(r.owner) + ", " + repr_str(r.data) + ")";
    if (missing.empty()) return "";
    return "lacks ('SignatureOwner', 'SignatureData') combinations {" + missing + "}";
  }

 private:
  std::vector<Signature> reqs_;
  std::set<std::pair<std::string, std::string>> seen_;
};

class DelayedField : public Test {
 public:
  explicit DelayedField(std::string n) : name_(std::move(n)) {}
  std::string why_not(Globals& g, const json& s) override {
    auto it = g.find(name_);
    if (it == g.end() || !it->second.is_array()) return "malformed test: global " + name_ + " is not a list";
    it->second.push_back(s);
    return "";
  }

 private:
  std::string name_;
};

class DelayInitializer : public Test {
 public:
  explicit DelayInitializer(std::vector<std::string> names) : names_(std::move(names)) {}
  std::string why_not(Globals& g, const json&) override {
    for (const auto& n : names_) g[n] = json::array();
    return "";
  }

 private:
  std::vector<std::string> names_;
};

std::vector<Digest> all_hash_digests(ByteView data) {
  Digest d;
  for (auto alg : {crypto::HashAlg::sha1, crypto::HashAlg::sha256, crypto::HashAlg::sha384, crypto::HashAlg::sha512,
                   crypto::HashAlg::sm3_256}) {
    if (!crypto::evp_md(alg)) continue;  // OpenSSL without SM3: that bank simply has no approved value
    d.push_back({std::string(crypto::hash_name(alg)), hex_encode(crypto::digest(alg, data))});
  }
  return {d};
}

}  // namespace

TestPtr accept_all() { return std::make_shared<AcceptAll>(); }
TestPtr reject_all(std::string why) { return std::make_shared<RejectAll>(std::move(why)); }
TestPtr all_of(std::vector<TestPtr> t) { return std::make_shared<And>(std::move(t)); }
TestPtr any_of(std::vector<TestPtr> t) { return std::make_shared<Or>(std::move(t)); }
TestPtr field(std::string n, TestPtr t, bool show) { return std::make_shared<Field>(std::move(n), std::move(t), show); }
TestPtr fields(std::vector<std::pair<std::string, TestPtr>> tests) {
  std::vector<TestPtr> ts;
  for (auto& [n, t] : tests) ts.push_back(field(n, t));
  return all_of(std::move(ts));
}
TestPtr iterate(TestPtr t, bool show) { return std::make_shared<Iterate>(std::move(t), show); }
TestPtr tuple(std::vector<TestPtr> t) { return std::make_shared<Tuple>(std::move(t)); }
TestPtr string_equal(std::string e) { return std::make_shared<StringEqual>(std::move(e)); }
TestPtr regexp(std::string p, bool dotall) { return std::make_shared<RegExp>(std::move(p), dotall); }
TestPtr digests(const std::vector<Digest>& good) { return std::make_shared<Digests>(good); }
TestPtr digest(const Digest& good) { return digests({good}); }
TestPtr variable(std::string vn, std::string un, TestPtr t) {
  return std::make_shared<Variable>(std::move(vn), std::move(un), std::move(t));
}
TestPtr once(TestPtr t) { return std::make_shared<Once>(std::move(t)); }

TestPtr signature_set_member(const std::vector<Signature>& sigs) {
  std::vector<TestPtr> ts;
  for (const auto& s : sigs)
    ts.push_back(all_of({field("SignatureOwner", string_equal(s.owner)), field("SignatureData", string_equal(s.data))}));
  return any_of(std::move(ts));
}

TestPtr key_subset(std::string sig_type, const std::vector<Signature>& keys) {
  return iterate(all_of({field("SignatureType", string_equal(std::move(sig_type))),
                         field("Keys", iterate(signature_set_member(keys)))}));
}

TestPtr key_subset_multi(const std::vector<std::string>& sig_types, const std::vector<Signature>& keys) {
  std::vector<TestPtr> ts;
  for (const auto& t : sig_types)
    ts.push_back(all_of({field("SignatureType", string_equal(t)), field("Keys", iterate(signature_set_member(keys)))}));
  return iterate(any_of(std::move(ts)));
}

TestPtr key_superset(std::string sig_type, const std::vector<Signature>& keys) {
  return tuple({all_of({field("SignatureType", string_equal(std::move(sig_type))),
                        field("Keys", std::make_shared<SignatureSuperset>(keys))})});
}

TestPtr ev_separator() {
  // Upstream compares the event text with "00000000" and "FFFFFFFF"; tpm2_eventlog prints lowercase hex, so
  // an all-ones separator never matches there either (kept for identical verdicts).
  std::vector<TestPtr> ts;
  for (const char* v : {"00000000", "FFFFFFFF"}) {
    Bytes raw = *hex_decode(v);
    ts.push_back(all_of({field("Event", string_equal(v)), digests(all_hash_digests(raw))}));
  }
  return any_of(std::move(ts));
}

TestPtr ev_efi_action(int pcr) {
  static const std::map<int, std::vector<std::string>> kExpected = {
      {1, {"Entering ROM Based Setup"}},
      {4, {"Calling EFI Application from Boot Option", "Returning from EFI Application from Boot Option"}},
      {5, {"Exit Boot Services Invocation", "Exit Boot Services Returned with Failure",
           "Exit Boot Services Returned with Success"}},
      {6, {"UEFI Debug Mode"}}};
  auto it = kExpected.find(pcr);
  if (it == kExpected.end())
    return reject_all("No EV_EFI_ACTION event for " + std::to_string(pcr) + " is expected in the spec");
  std::vector<TestPtr> ts;
  for (const auto& v : it->second)
    ts.push_back(all_of({field("Event", string_equal(v)), digests(all_hash_digests(as_bytes(v)))}));
  return any_of(std::move(ts));
}

void Dispatcher::set(std::vector<json> key_vals, TestPtr test) {
  if (key_vals.size() != key_names_.size()) throw std::logic_error("dispatcher key arity");
  if (!tests_.emplace(std::move(key_vals), std::move(test)).second) throw std::logic_error("multiple tests for a key");
}

std::string Dispatcher::why_not(Globals& g, const json& s) {
  if (!s.is_object()) return "is not a dict";
  std::vector<json> vals;
  for (const auto& k : key_names_) {
    auto it = s.find(k);
    if (it == s.end()) return "has no " + k;
    vals.push_back(*it);
  }
  auto it = tests_.find(vals);
  if (it == tests_.end()) {
    std::string names = detail::repr_str_tuple(key_names_);
    std::string v = "(";
    for (std::size_t i = 0; i < vals.size(); ++i) v += (i ? ", " : "") + repr(vals[i]);
    v += vals.size() == 1 ? ",)" : ")";
    return "has unexpected " + names + " combination " + v;
  }
  return it->second->why_not(g, s);
}

VariableDispatch::VariableDispatch()
    : vd_(std::make_shared<Dispatcher>(std::vector<std::string>{"VariableName", "UnicodeName"})),
      inner_(field("Event", vd_)) {}

void VariableDispatch::set(const std::string& vn, const std::string& un, TestPtr data_test) {
  vd_->set({json(vn), json(un)}, field("VariableData", std::move(data_test)));
}

std::string VariableDispatch::why_not(Globals& g, const json& s) { return inner_->why_not(g, s); }

TestPtr DelayToFields::initializer() { return std::make_shared<DelayInitializer>(field_names_); }

TestPtr DelayToFields::get(const std::string& name) {
  if (std::find(field_names_.begin(), field_names_.end(), name) == field_names_.end())
    throw std::logic_error(name + " is not a delayed field");
  return std::make_shared<DelayedField>(name);
}

std::string DelayToFields::why_not(Globals& g, const json&) {
  json delayed = json::object();
  for (const auto& n : field_names_) {
    auto it = g.find(n);
    // The pass is over: the collected events move into the record instead of being copied.
    delayed[n] = it == g.end() ? json(nullptr) : std::move(it->second);
  }
  return fields_test_->why_not(g, delayed);
}

}  // namespace kl::mb::tree
