#include "kadnet/dht/lock_ops.hpp"

#include <stdexcept>
#include <string>

namespace kadnet::dht {
namespace {

using core::errc;

lock_step step_for(const lock_request& r, const core::node_id& self, const std::optional<byte_vector>& current) {
  switch (r.action) {
    case lock_action::acquire: return acquire_step(current, self, r.lease);
    case lock_action::renew: return renew_step(current, self, r.token, r.lease);
    case lock_action::release: return release_step(current, self, r.token);
  }
  return errc::bad_field;
}

std::optional<byte_vector> current_of(const cas_outcome& c) {
  if (c.version == 0 || !c.value) return std::nullopt;
  return c.value;
}

}  // namespace

void check_lease(std::chrono::milliseconds lease) {
  if (lease.count() < 1 || lease > max_lock_lease)
    throw std::invalid_argument("lock lease of " + std::to_string(lease.count()) +
                                " ms: it must be 1 ms to 24 h");
}

update_function lock_update(const lock_request& request, const core::node_id& self) {
  return [request, self](const std::optional<versioned_value>& current) -> std::optional<byte_vector> {
    std::optional<byte_vector> bytes;
    if (current) bytes = current->value;
    auto step = step_for(request, self, bytes);
    if (auto* next = std::get_if<lock_record>(&step)) return lock_record_bytes(*next);
    return std::nullopt;
  };
}

lock_outcome to_lock_outcome(const lock_request& request, const core::node_id& self, const cas_outcome& c,
                             core::time_point now) {
  lock_outcome o;
  o.ec = c.ec;
  o.version = c.version;
  o.maybe_written = c.maybe_written;
  o.attempts = c.attempts;
  o.messages = c.messages;
  lock_record rec;
  const bool has_record = c.value && !decode_lock_record(*c.value, rec);
  if (has_record) {
    o.token = rec.token;
    o.holder = rec.holder;
  }
  if (c.ec == errc::locked && c.locked_by) {
    o.holder = c.locked_by->holder;
    o.token = c.locked_by->token;
    o.remaining = c.locked_by->remaining;
    return o;
  }
  if (c.ec) return o;
  if (c.written) {
    // Our own record: the lease runs from when we made it, the earliest a replica can count from.
    o.granted_at = now;
    if (request.action != lock_action::release) o.expires_at = c.value_since + request.lease;
    return o;
  }
  // The rule declined on the current value. An unlock that finds its own grant released already
  // (its earlier reply was lost, or it was asked twice) is done.
  if (request.action == lock_action::release && has_record && !rec.held && rec.holder == self &&
      rec.token == request.token)
    return o;
  auto step = step_for(request, self, current_of(c));
  o.ec = std::holds_alternative<errc>(step) ? make_error_code(std::get<errc>(step))
                                            : make_error_code(errc::not_lock_holder);
  return o;
}

}  // namespace kadnet::dht
