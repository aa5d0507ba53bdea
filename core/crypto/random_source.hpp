#pragma once
// The randomness the crypto cores draw on (ephemeral keys, cookie secrets). Injected so tests and
// simulations can replay a run from a seed; an empty source means libsodium's randombytes_buf.
#include <functional>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core::crypto {

// Fills the whole span with random bytes. Production code passes nothing (the default is the
// operating system's CSPRNG via libsodium); a seeded source is for tests only.
using random_source = std::function<void(mutable_byte_span)>;

// Calls `source`, or libsodium's randombytes_buf when it is empty.
void fill_random(const random_source& source, mutable_byte_span out);

}  // namespace kadnet::core::crypto
