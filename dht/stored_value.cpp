#include "kadnet/dht/stored_value.hpp"

namespace kadnet::dht {

stored_value from_store(const core::wire::store& s, core::time_point now) {
  stored_value v;
  v.key = s.key;
  v.version = s.version;
  v.value = s.value;
  v.expires = now + std::chrono::seconds(s.ttl_seconds);
  if (s.owner) {
    v.owner = s.owner->owner;
    v.sig = s.owner->sig;
  }
  return v;
}

core::wire::store to_store(const stored_value& v, core::time_point now) {
  core::wire::store s;
  s.key = v.key;
  s.version = v.version;
  auto left = std::chrono::floor<std::chrono::seconds>(v.expires - now);
  s.ttl_seconds = left.count() <= 0 ? 0
                  : left.count() > UINT32_MAX ? UINT32_MAX
                                              : static_cast<std::uint32_t>(left.count());
  if (v.owner && v.sig) s.owner = core::wire::store_owner{*v.owner, *v.sig};
  s.value = v.value;
  return s;
}

bool verify_owner_signature(const stored_value& v) {
  if (!v.owner && !v.sig) return true;
  if (!v.owner || !v.sig) return false;
  // The signed bytes are defined once, by the wire codec; building a store costs a copy of the
  // value, which is small beside an Ed25519 verification.
  core::wire::store s;
  s.key = v.key;
  s.version = v.version;
  s.value = v.value;
  return core::identity::verify(*v.owner, core::wire::store_signed_bytes(s), *v.sig);
}

}  // namespace kadnet::dht
