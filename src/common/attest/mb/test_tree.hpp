// A port of the combinators of Keylime's measured-boot test tree (keylime/mba/elchecking/tests.py): a Test
// looks at a JSON subject and returns "" to accept or a reason that reads as a sentence after the subject.
// Reasons are spelt as upstream spells them, so tenants see the same texts. Internal to mb/.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/attest/mb/full_match.hpp"

namespace kl::mb::tree {

using nlohmann::json;
using Globals = std::map<std::string, json>;  // the "globs" the delayed fields collect into

class Test {
 public:
  virtual ~Test() = default;
  virtual std::string why_not(Globals& globs, const json& subject) = 0;
};
using TestPtr = std::shared_ptr<Test>;

TestPtr accept_all();
TestPtr reject_all(std::string why);
TestPtr all_of(std::vector<TestPtr> tests);   // tests.And
TestPtr any_of(std::vector<TestPtr> tests);   // tests.Or
TestPtr field(std::string name, TestPtr test, bool show_name = true);
TestPtr fields(std::vector<std::pair<std::string, TestPtr>> tests);  // tests.FieldsTest
TestPtr iterate(TestPtr elt_test, bool show_elt = false);
TestPtr tuple(std::vector<TestPtr> member_tests);
TestPtr string_equal(std::string expected);
TestPtr regexp(std::string pattern, bool dotall = false);  // throws std::invalid_argument for a bad pattern
using Digest = std::vector<std::pair<std::string, std::string>>;  // alg -> hex, in insertion order
TestPtr digests(const std::vector<Digest>& good);                 // tests.DigestsTest
TestPtr digest(const Digest& good);
// tests.VariableTest with a regular-expression UnicodeName.
TestPtr variable(std::string variable_name, std::string unicode_name_regex, TestPtr data_test);
TestPtr once(TestPtr test);

struct Signature {
  std::string owner, data;
};
TestPtr signature_set_member(const std::vector<Signature>& sigs);
TestPtr key_subset(std::string sig_type, const std::vector<Signature>& keys);
TestPtr key_subset_multi(const std::vector<std::string>& sig_types, const std::vector<Signature>& keys);
TestPtr key_superset(std::string sig_type, const std::vector<Signature>& keys);
TestPtr ev_separator();
TestPtr ev_efi_action(int pcr);

class Dispatcher : public Test {
 public:
  explicit Dispatcher(std::vector<std::string> key_names) : key_names_(std::move(key_names)) {}
  void set(std::vector<json> key_vals, TestPtr test);
  std::string why_not(Globals& globs, const json& subject) override;

 private:
  std::vector<std::string> key_names_;
  std::map<std::vector<json>, TestPtr> tests_;
};

// tests.VariableDispatch: a Dispatcher on Event.(VariableName, UnicodeName) applied to Event.VariableData.
class VariableDispatch : public Test {
 public:
  VariableDispatch();
  void set(const std::string& variable_name, const std::string& unicode_name, TestPtr data_test);
  std::string why_not(Globals& globs, const json& subject) override;

 private:
  std::shared_ptr<Dispatcher> vd_;
  TestPtr inner_;
};

// tests.DelayToFields: events are stashed into named lists during the pass, then fields_test runs on them.
class DelayToFields : public Test, public std::enable_shared_from_this<DelayToFields> {
 public:
  DelayToFields(TestPtr fields_test, std::vector<std::string> field_names)
      : fields_test_(std::move(fields_test)), field_names_(std::move(field_names)) {}
  TestPtr initializer();
  TestPtr get(const std::string& field_name);
  std::string why_not(Globals& globs, const json& subject) override;
  const std::vector<std::string>& field_names() const { return field_names_; }

 private:
  TestPtr fields_test_;
  std::vector<std::string> field_names_;
};

}  // namespace kl::mb::tree
