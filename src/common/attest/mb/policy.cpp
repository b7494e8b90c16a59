#include "common/attest/mb/policy.hpp"

#include <algorithm>

#include "common/attest/mb/example_policy.hpp"
#include "common/attest/mb/python_repr.hpp"
#include "common/attest/parse_error.hpp"

namespace kl::mb {
namespace {

using nlohmann::json;

class AcceptAllPolicy : public BootPolicy {
 public:
  std::string_view name() const override { return "accept-all"; }
  std::set<std::uint32_t> relevant_pcrs() const override { return {}; }
  void check_refstate(const json&) const override {}
  std::string evaluate(const json&, const json&) const override { return ""; }
};

class RejectAllPolicy : public BootPolicy {
 public:
  std::string_view name() const override { return "reject-all"; }
  std::set<std::uint32_t> relevant_pcrs() const override { return {}; }
  void check_refstate(const json&) const override {}
  std::string evaluate(const json&, const json&) const override { return "reject all"; }
};

class ExamplePolicy : public BootPolicy {
 public:
  std::string_view name() const override { return "example"; }
  std::set<std::uint32_t> relevant_pcrs() const override { return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14}; }
  void check_refstate(const json& refstate) const override { (void)detail::example_refstate_to_test(refstate); }
  std::string evaluate(const json& refstate, const json& parsed_log) const override {
    // A fresh tree per evaluation: the "once" tests carry state.
    auto test = detail::example_refstate_to_test(refstate);
    tree::Globals globs;
    return test->why_not(globs, parsed_log);
  }
};

const AcceptAllPolicy kAcceptAll;
const RejectAllPolicy kRejectAll;
const ExamplePolicy kExample;

}  // namespace

const BootPolicy* find_policy(std::string_view name) {
  if (name == kAcceptAll.name()) return &kAcceptAll;
  if (name == kRejectAll.name()) return &kRejectAll;
  if (name == kExample.name()) return &kExample;
  return nullptr;
}

std::vector<std::string> policy_names() { return {"accept-all", "reject-all", "example"}; }

std::set<std::uint32_t> measured_boot_pcrs() { return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15}; }

std::set<std::uint32_t> mb_pcrs_to_check(std::string_view policy_name) {
  auto all = measured_boot_pcrs();
  const BootPolicy* p = find_policy(policy_name);
  if (!p) return all;
  auto relevant = p->relevant_pcrs();
  if (relevant.empty()) return all;
  std::set<std::uint32_t> out;
  std::set_intersection(all.begin(), all.end(), relevant.begin(), relevant.end(), std::inserter(out, out.end()));
  return out;
}

bool refstate_is_valid(std::string_view text) {
  if (text.empty()) return false;
  auto v = json::parse(text.begin(), text.end(), nullptr, false);
  return !v.is_discarded() && !v.is_null();
}

Refstate parse_refstate(std::string_view text) {
  Refstate r;
  r.text = std::string(text);
  if (text.empty()) return r;
  r.value = json::parse(text.begin(), text.end(), nullptr, false);
  if (r.value.is_discarded()) throw ParseError("measured boot reference state is not valid JSON");
  return r;
}

Failure evaluate_boot_log(std::string_view policy_name, std::string_view refstate_text, const json& parsed_log,
                          const std::set<std::uint32_t>& pcrs_in_quote) {
  if (refstate_text.empty()) return Failure(Component::measured_boot);
  return evaluate_boot_log(policy_name, parse_refstate(refstate_text), parsed_log, pcrs_in_quote);
}

Failure evaluate_boot_log(std::string_view policy_name, const Refstate& refstate, const json& parsed_log,
                          const std::set<std::uint32_t>& pcrs_in_quote) {
  Failure failure(Component::measured_boot);
  if (refstate.text.empty() || !detail::truthy(refstate.value)) return failure;

  const BootPolicy* policy = find_policy(policy_name);
  if (!policy) policy = find_policy("reject-all");  // upstream: unknown name -> reject-all, with a warning
  const std::string name(policy->name());

  std::vector<std::uint32_t> missing;
  for (auto p : policy->relevant_pcrs())
    if (!pcrs_in_quote.count(p)) missing.push_back(p);
  std::string reason;
  if (!missing.empty()) {
    failure.add_event("missing_pcrs", json{{"context", "PCRs are missing in quote"}, {"data", missing}}, true);
  } else {
    try {
      reason = policy->evaluate(refstate.value, parsed_log);
    } catch (const std::exception& e) {
      reason = std::string("policy evaluation failed: ") + e.what();
    }
  }
  if (!reason.empty()) {
    // Only a failure needs the refstate in the order the user wrote it (Python's str() keeps that order).
    auto ordered = nlohmann::ordered_json::parse(refstate.text);
    // The example policy fills in a missing vendor_db before upstream prints the refstate.
    static constexpr const char* kRequired[] = {"pk", "kek", "db", "dbx", "mokdig", "mokxdig"};
    if (name == "example" && ordered.is_object() && !ordered.contains("vendor_db") &&
        std::all_of(std::begin(kRequired), std::end(kRequired), [&](const char* k) { return ordered.contains(k); }))
      ordered["vendor_db"] = nlohmann::ordered_json::array();
    failure.add_event("policy_" + name,
                      json{{"context", "Boot attestation failed"},
                           {"policy", name},
                           {"refstate", detail::repr(ordered)},
                           {"reason", reason}},
                      true);
  }
  return failure;
}

}  // namespace kl::mb
