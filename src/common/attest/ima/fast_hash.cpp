#define OPENSSL_SUPPRESS_DEPRECATED  // SHA*_Init & co.: deliberately used for speed (see header)
#include "common/attest/ima/fast_hash.hpp"

#include <openssl/sha.h>

#include <stdexcept>

namespace kl::ima::detail {

DigestValue fast_digest2(crypto::HashAlg alg, ByteView a, ByteView b) {
  DigestValue out;
  switch (alg) {
    case crypto::HashAlg::sha1: {
      SHA_CTX c;
      SHA1_Init(&c);
      SHA1_Update(&c, a.data(), a.size());
      SHA1_Update(&c, b.data(), b.size());
      SHA1_Final(out.bytes.data(), &c);
      out.size = 20;
      return out;
    }
    case crypto::HashAlg::sha256: {
      SHA256_CTX c;
      SHA256_Init(&c);
      SHA256_Update(&c, a.data(), a.size());
      SHA256_Update(&c, b.data(), b.size());
      SHA256_Final(out.bytes.data(), &c);
      out.size = 32;
      return out;
    }
    case crypto::HashAlg::sha384: {
      SHA512_CTX c;
      SHA384_Init(&c);
      SHA384_Update(&c, a.data(), a.size());
      SHA384_Update(&c, b.data(), b.size());
      SHA384_Final(out.bytes.data(), &c);
      out.size = 48;
      return out;
    }
    case crypto::HashAlg::sha512: {
      SHA512_CTX c;
      SHA512_Init(&c);
      SHA512_Update(&c, a.data(), a.size());
      SHA512_Update(&c, b.data(), b.size());
      SHA512_Final(out.bytes.data(), &c);
      out.size = 64;
      return out;
    }
    case crypto::HashAlg::sm3_256: {
      Bytes joined(a.begin(), a.end());
      joined.insert(joined.end(), b.begin(), b.end());
      Bytes d = crypto::digest(alg, joined);  // throws if this OpenSSL lacks SM3
      std::copy(d.begin(), d.end(), out.bytes.begin());
      out.size = d.size();
      return out;
    }
  }
  throw std::logic_error("unknown hash algorithm");
}

DigestValue fast_digest(crypto::HashAlg alg, ByteView data) { return fast_digest2(alg, data, {}); }

}  // namespace kl::ima::detail
