#include "kadnet/core/crypto/random_source.hpp"

#include <sodium.h>

#include "kadnet/core/identity.hpp"

namespace kadnet::core::crypto {

void fill_random(const random_source& source, mutable_byte_span out) {
  if (source) {
    source(out);
    return;
  }
  ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

}  // namespace kadnet::core::crypto
