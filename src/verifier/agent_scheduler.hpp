// What the tenant API needs from the poller. The poller owns every state change of the agents it polls, so
// stop / reactivate / delete go through it rather than writing the database behind its back.
#pragma once
#include <string>

#include "common/service/storage/verifier_store.hpp"

namespace kl::verifier {

enum class RemoveResult { removed, pending /* a request to the agent is in flight: TERMINATED, deleted later */ };

class AgentScheduler {
 public:
  virtual ~AgentScheduler() = default;
  // Starts (or restarts) polling `agent` as stored, from state START with a partial=0 quote; commits the state.
  virtual void start(const storage::VerifierAgent& agent) = 0;
  // Cancels polling and commits `new_state` (TENANT_FAILED for PUT .../stop). False if the id is unknown.
  virtual bool stop(const std::string& agent_id, int new_state) = 0;
  // DELETE semantics of wire-contract §3.6 once the caller has decided the agent may go.
  virtual RemoveResult remove(const std::string& agent_id) = 0;
  // A runtime (allowlists) or measured-boot (mbpolicies) policy of that name was updated or deleted through the
  // tenant API: agents using it must judge their next quote by the stored version.
  enum class PolicyKind { runtime, measured_boot };
  virtual void policy_changed(PolicyKind, const std::string& name) {}
};

}  // namespace kl::verifier
