#pragma once
// The sending side of a patch (PROTOCOL.md 8.8): what a writer holds before it sends anything.
// A patch needs two bodies: the diff for replicas at the base version, and the whole new value
// for those that are not (they answer the diff with a NACK and get the whole value instead, same
// version, same signature). Sans-I/O; dht_node wires it to the lookup and the STOREs.
#include <cstddef>
#include <optional>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/value_patch.hpp"

namespace kadnet::dht {

struct patch_body {
  byte_vector value;                 // the whole new value
  std::optional<byte_vector> diff;   // the encoded diff; none when it would not be smaller than
                                     // the value (then every replica gets the whole value)
};

// From the base and the new value: the diff is make_patch(base, next).
patch_body patch_from_values(byte_span base, byte_vector next);

// From the base and a diff: the diff is applied here first, so that a diff that does not fit
// the base is refused before anything is sent (errc::bad_field), as is a result over
// limits.max_value (errc::too_large). `out` is untouched on error.
boost::system::error_code patch_from_diff(byte_span base, const value_patch& diff, const patch_limits& limits,
                                          patch_body& out);

// The bytes the STORE message `s` takes on the wire (header included): what a put or a patch
// reports as sent.
std::size_t store_message_size(const core::wire::store& s);

}  // namespace kadnet::dht
