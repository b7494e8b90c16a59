// Decorators that time every store call (latency histogram, error count) for /metrics, whatever the
// backend; open_registrar_store / open_verifier_store return stores wrapped in them.
#pragma once

#include <memory>
#include <string>

#include "common/service/storage/registrar_store.hpp"
#include "common/service/storage/verifier_store.hpp"

namespace kl::storage {

// `backend` names the inner store in StoreStats ("sqlite", "postgresql"); pool figures come from the inner store.
std::unique_ptr<RegistrarStore> timed(std::unique_ptr<RegistrarStore> inner, std::string backend);
std::unique_ptr<VerifierStore> timed(std::unique_ptr<VerifierStore> inner, std::string backend);

}  // namespace kl::storage
