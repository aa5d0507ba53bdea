#include "kadnet/dht/patch_request.hpp"

namespace kadnet::dht {

namespace {
// opcode, message id | key, version, ttl, flags | value length
constexpr std::size_t store_fixed_size = 1 + 4 + 32 + 8 + 4 + 1 + 4;
constexpr std::size_t owner_size = 32 + 64;
constexpr std::size_t consensus_size = 1 + 8 + 32 + core::wire::proposal_id_size;

std::optional<byte_vector> encoded_if_smaller(const value_patch& p, std::size_t value_size) {
  // Equal sizes favour the whole value: it never needs a second try.
  if (encoded_size(p) >= value_size) return std::nullopt;
  byte_vector out;
  out.reserve(encoded_size(p));
  encode_patch(p, out);
  return out;
}
}  // namespace

patch_body patch_from_values(byte_span base, byte_vector next) {
  patch_body b;
  b.diff = encoded_if_smaller(make_patch(base, next), next.size());
  b.value = std::move(next);
  return b;
}

boost::system::error_code patch_from_diff(byte_span base, const value_patch& diff, const patch_limits& limits,
                                          patch_body& out) {
  byte_vector next;
  if (auto ec = apply_patch(base, diff, limits, next)) return ec;
  out.diff = encoded_if_smaller(diff, next.size());
  out.value = std::move(next);
  return {};
}

std::size_t store_message_size(const core::wire::store& s) {
  return store_fixed_size + (s.owner ? owner_size : 0) + (s.consensus ? consensus_size : 0) + s.value.size();
}

}  // namespace kadnet::dht
