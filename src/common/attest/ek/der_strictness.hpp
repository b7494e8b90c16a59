// Whether a certificate's encoding is canonical DER. OpenSSL accepts (and keeps) many BER-isms that strict
// parsers such as python-cryptography reject; upstream Keylime reports those certificates as "malformed"
// (`malformed_cert_action`), so we need the same yes/no answer without a second ASN.1 library.
#pragma once
#include "common/attest/crypto/bytes.hpp"

namespace kl::ek {

// True iff `der` is one complete TLV tree in canonical DER: definite minimal lengths, low-tag-number form,
// SET elements in ascending order of their encodings, BOOLEAN as 00/FF, minimal INTEGERs, and, for the
// X.509 fields where it applies, no explicitly encoded DEFAULT values (version v1, extension critical FALSE).
// Contents of OCTET STRING / BIT STRING (extension values, keys) are not inspected, as strict
// parsers decode those lazily.
bool is_strict_der_certificate(ByteView der);

}  // namespace kl::ek
