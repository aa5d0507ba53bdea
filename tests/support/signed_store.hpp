#pragma once
// An owner-signed STORE (BEP 44 mutable item) for tests: `s` with its owner part filled in.
#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::testing {

inline core::wire::store signed_by(const core::identity& owner, core::wire::store s) {
  s.owner = core::wire::store_owner{owner.id(), owner.sign(core::wire::store_signed_bytes(s))};
  return s;
}

}  // namespace kadnet::testing
