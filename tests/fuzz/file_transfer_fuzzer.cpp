// libFuzzer target for the file-transfer frames (core/wire/file_transfer.cpp, PROTOCOL.md 9.7).
//
// The input is read as a receiver reads a stream: header, body, header, body, ... until a frame
// fails or the input ends. It must never crash or read out of bounds; every frame that decodes
// re-encodes to exactly the bytes it came from (the encoding is canonical); the whole input given
// to decode() succeeds exactly when it is one frame; and check_file_name never accepts a name a
// receiver could not safely join to its directory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/wire/file_transfer.hpp"

using namespace kadnet;
using namespace kadnet::core::wire;

namespace {
void check_name(const std::string& name) {
  if (check_file_name(name) != file_name_problem::none) return;
  if (name.empty() || name.size() > max_file_name || name == "." || name.starts_with("..")) std::abort();
  for (char c : name)
    if (c == '/' || c == '\\' || c == '\0') std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_span in(data, size);
  std::size_t pos = 0, frames = 0;
  while (in.size() - pos >= file_frame_header_size) {
    file_frame_header header;
    if (decode_header(in.subspan(pos), header)) break;
    if (in.size() - pos - file_frame_header_size < header.length) break;
    byte_span frame = in.subspan(pos, file_frame_header_size + header.length);
    file_message m;
    if (decode_body(header, frame.subspan(file_frame_header_size), m)) break;
    byte_vector again;
    encode(m, again);
    if (again.size() != frame.size() || !std::equal(again.begin(), again.end(), frame.begin())) std::abort();
    if (auto* offer = std::get_if<file_offer>(&m)) check_name(offer->name);
    pos += frame.size();
    ++frames;
  }
  file_message whole;
  bool one_frame = frames == 1 && pos == size;
  if (!decode(in, whole) != one_frame) std::abort();
  return 0;
}
