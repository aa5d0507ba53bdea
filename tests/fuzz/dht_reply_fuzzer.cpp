// libFuzzer target: the DHT reply decoders (dht/dht_codec.hpp). A reply that decodes re-encodes
// to the same bytes, and holds no more bytes than it was given.
#include <cstdlib>

#include "kadnet/dht/dht_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kadnet;
  byte_span in(data, size);
  dht::find_value_reply reply;
  if (!dht::decode_find_value_reply(in, reply, 64 * 1024)) {
    byte_vector again;
    dht::encode_find_value_reply(reply, again);
    if (again != byte_vector(in.begin(), in.end())) std::abort();
  }
  std::vector<dht::wire_contact> contacts;
  if (!dht::decode_contacts(in, contacts)) {
    byte_vector again;
    dht::encode_contacts(contacts, again);
    if (again != byte_vector(in.begin(), in.end())) std::abort();
  }
  return 0;
}
