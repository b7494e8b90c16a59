// GET /v2.x/verify/identity (wire-contract §3.9): checks an identity quote against the stored AK, no PCR policy.
#pragma once
#include "common/service/http/message.hpp"
#include "verifier/service_context.hpp"

namespace kl::verifier {

http::Response handle_verify_identity(ServiceContext&, const http::Request&, const RouteParams&);

}  // namespace kl::verifier
