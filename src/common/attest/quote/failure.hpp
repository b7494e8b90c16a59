// Verdicts as values, mirroring Keylime's failure model (verification.md §6): a Failure is an ordered
// list of events; each event id is "<component>[.<sub>...].<id>" with Keylime's exact spellings
// (including the misspelt "qoute_validation"), so tenants, dashboards and alerts keep working.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kl {

enum class Component { quote_validation, pcr_validation, measured_boot, ima, internal, tee_attestation, default_ };

// Keylime's prefix: "qoute_validation" (sic), "pcr_validation", "measured_boot", "ima", "internal",
// "tee_attestation", "default".
std::string_view component_name(Component);

struct SeverityLabel {
  std::string name;
  int level = 0;  // index in the configured label list
  friend bool operator==(const SeverityLabel&, const SeverityLabel&) = default;
};

// `[verifier] severity_labels` / `severity_policy`: the first rule whose regex fully matches the
// event id gives the label; an unknown label or no matching rule gives the highest label.
class SeverityPolicy {
 public:
  struct Rule {
    std::string event_id_regex;
    std::string severity_label;
  };
  // Keylime defaults: labels info..emergency, one rule ".*" -> "emergency".
  SeverityPolicy();
  // Throws std::invalid_argument for an empty label list, an empty rule list or a bad regex.
  SeverityPolicy(std::vector<std::string> labels, std::vector<Rule> rules);

  SeverityLabel label_for(std::string_view event_id) const;
  SeverityLabel max_label() const;

 private:
  struct Data;
  static std::shared_ptr<const Data> build(std::vector<std::string> labels, const std::vector<Rule>& rules);
  std::shared_ptr<const Data> d_;  // immutable and shared: copying a policy into every Failure is cheap
};

struct Event {
  std::string component;       // e.g. "pcr_validation"
  std::string event_id;        // full id, e.g. "pcr_validation.invalid_pcr_15"
  SeverityLabel severity_label;
  nlohmann::json context;      // always an object; a plain string becomes {"message": "..."}
  bool recoverable = true;

  // The context as Keylime serialises it (Python json.dumps: ", " and ": " separators, ASCII
  // escapes). Keys come out sorted (nlohmann::json keeps objects sorted).
  std::string context_text() const;
};

class Failure {
 public:
  // Severity labels are taken from `policy` when events are added; the verifier may re-apply its
  // configured policy later with apply_severity_policy(), so inner code can use the default.
  explicit Failure(Component component, std::vector<std::string> sub_components = {},
                   SeverityPolicy policy = SeverityPolicy());

  // id is the last part ("invalid_pcr_15"); extra sub-components are appended to the Failure's own.
  // context: a JSON object, or a string (stored as {"message": "<string>"}).
  // An irrecoverable event makes the Failure irrecoverable and is forced to the highest label.
  void add_event(std::string_view id, nlohmann::json context, bool recoverable,
                 const std::vector<std::string>& sub_components = {});
  void merge(const Failure& other);

  // Re-labels every event (irrecoverable ones stay at the maximum) and recomputes the highest one.
  void apply_severity_policy(const SeverityPolicy& policy);

  const std::vector<Event>& events() const { return events_; }
  std::vector<std::string> event_ids() const;
  bool has_event(std::string_view event_id) const;
  bool recoverable() const { return recoverable_; }
  // First event with the highest level (ties keep the earlier one); nullptr when there are none.
  const Event* highest_severity_event() const;
  std::optional<SeverityLabel> highest_severity() const;

  // "failed" in Keylime's sense: any event, or irrecoverable.
  bool failed() const { return !recoverable_ || !events_.empty(); }
  explicit operator bool() const { return failed(); }

  Component component() const { return component_; }

 private:
  Component component_;
  std::vector<std::string> sub_components_;
  SeverityPolicy policy_;
  std::vector<Event> events_;
  bool recoverable_ = true;
};

}  // namespace kl
