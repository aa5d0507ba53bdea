// The sending side of a file transfer (PROTOCOL.md 9.7): hash, open, offer, answer, start,
// chunks, FIN, verdict — one coroutine on the node's strand per file.
//
// GCC 12 miscompiles temporaries of class type in co_await expressions (they are copied bitwise
// and destroyed twice), so every coroutine here is called with lvalues and scalars only.
#include "kadnet/transports/file_transfer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "kadnet/transports/file_frame_io.hpp"
#include "kadnet/transports/local_file.hpp"
#include "kadnet/transports/stream_watchdog.hpp"

namespace kadnet {
namespace {

namespace asio = boost::asio;
namespace wire = core::wire;
using boost::system::error_code;
using transports::blake2b_256;
using transports::local_file;

using outcome = std::pair<error_code, file_send_result>;

// A frame the receiver sent that does not decode, or a stream that ended where the protocol
// wants an answer, is the receiver's fault; the stream's own failures pass through, among them
// a receiver that takes no files (it refused the stream: protocol_not_served).
error_code answer_error(error_code ec) {
  if (ec == core::errc::protocol_not_served) return ec;
  if (ec.category() == core::error_category() || ec == asio::error::eof)
    return make_error_code(file_errc::protocol_violation);
  return ec;
}

error_code verdict_error(wire::file_verdict_code code) {
  switch (code) {
    case wire::file_verdict_code::ok: return {};
    case wire::file_verdict_code::size_mismatch: return file_errc::size_mismatch;
    case wire::file_verdict_code::digest_mismatch: return file_errc::digest_mismatch;
    case wire::file_verdict_code::io_error: return file_errc::receiver_failed;
  }
  return file_errc::protocol_violation;
}

// Everything after the stream is open. Anything but an orderly end resets the stream, so that
// the receiver learns at once.
asio::awaitable<error_code> send_over(stream& s, const local_file& file, file_send_result& result,
                                      const file_progress& progress) {
  transports::stream_watchdog watch(s, file_send_idle_timeout);
  const std::function<void()> kick = [&watch] { watch.kick(); };
  auto failed = [&](error_code ec) {
    if (watch.fired()) ec = core::errc::timeout;
    if (ec != file_errc::rejected) s.reset();
    return ec;
  };

  const wire::file_message offer = wire::file_offer{result.size, result.digest, result.name};
  if (auto ec = co_await transports::write_file_frame(s, offer)) co_return failed(ec);
  wire::file_message answer;
  if (auto ec = co_await transports::read_file_frame(s, answer)) co_return failed(answer_error(ec));
  watch.kick();
  if (auto* no = std::get_if<wire::file_reject>(&answer)) {
    result.reject_code = no->code;
    result.reason = no->text;
    co_return failed(file_errc::rejected);
  }
  auto* yes = std::get_if<wire::file_accept>(&answer);
  if (!yes || yes->offset > result.size) co_return failed(file_errc::protocol_violation);

  // Resume only when the receiver's bytes are our file's first bytes; otherwise start afresh.
  std::uint64_t position = 0;
  if (yes->offset > 0) {
    blake2b_256 prefix;
    if (auto ec = co_await transports::hash_file_range(file, 0, yes->offset, prefix, kick)) co_return failed(ec);
    if (prefix.finish() == yes->prefix_digest) position = yes->offset;
  }
  const wire::file_message start = wire::file_start{position};
  if (auto ec = co_await transports::write_file_frame(s, start)) co_return failed(ec);
  result.resumed_from = position;
  if (progress) progress(position, result.size);

  byte_vector frame;
  while (position < result.size) {
    auto length = static_cast<std::size_t>(std::min<std::uint64_t>(wire::max_file_chunk, result.size - position));
    frame.clear();
    wire::encode_chunk_header(length, frame);
    frame.resize(wire::file_frame_header_size + length);
    error_code ec;
    std::size_t got = file.read_at(position, mutable_byte_span(frame).subspan(wire::file_frame_header_size), ec);
    if (ec) co_return failed(ec);
    if (got < length) co_return failed(file_errc::file_changed);
    if (!s.is_open()) co_return failed(asio::error::operation_aborted);
    auto [wec, n] = co_await asio::async_write(s, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
    if (wec) co_return failed(wec);
    watch.kick();
    position += length;
    result.bytes_sent += length;
    if (progress) progress(position, result.size);
  }
  s.shutdown_send();

  wire::file_message last;
  if (auto ec = co_await transports::read_file_frame(s, last)) co_return failed(answer_error(ec));
  auto* verdict = std::get_if<wire::file_verdict>(&last);
  if (!verdict) co_return failed(file_errc::protocol_violation);
  if (auto ec = verdict_error(verdict->code)) co_return failed(ec);
  co_return error_code{};
}

// Hashes the file before the stream is opened (a large file takes a while, and the receiver
// would wait for the offer), then runs the conversation. `open` is the node's deferred
// async_open_stream: it holds the node's engine, not the node.
template <typename OpenStream>
asio::awaitable<outcome> send_file(OpenStream open, local_file file, file_send_result result, file_progress progress) {
  blake2b_256 whole;
  const std::function<void()> no_kick;
  if (auto ec = co_await transports::hash_file_range(file, 0, result.size, whole, no_kick))
    co_return outcome{ec, std::move(result)};
  result.digest = whole.finish();
  auto [ec, s] = co_await std::move(open)(asio::as_tuple(asio::use_awaitable));
  if (!ec) ec = co_await send_over(s, file, result, progress);
  co_return outcome{ec, std::move(result)};
}

}  // namespace

namespace detail {

void start_send_file(node& from, peer_ref to, std::filesystem::path path, file_progress progress,
                     send_file_done done) {
  file_send_result result;
  result.name = path.filename().string();
  // What can be judged locally fails before anything goes to the network.
  auto local_failure = [&](error_code ec) { std::move(done)(ec, std::move(result)); };
  if (wire::check_file_name(result.name) != wire::file_name_problem::none) return local_failure(file_errc::bad_name);
  error_code ec;
  auto file = local_file::open_for_sending(path, ec);
  if (ec) return local_failure(ec);
  result.size = file.size(ec);
  if (ec) return local_failure(ec);

  auto open = from.async_open_stream(std::move(to), std::string(core::wire::file_stream_protocol), asio::deferred);
  asio::co_spawn(from.get_executor(),
                 send_file(std::move(open), std::move(file), std::move(result), std::move(progress)),
                 [done = std::move(done)](std::exception_ptr e, outcome o) mutable {
                   if (e) std::rethrow_exception(e);
                   std::move(done)(o.first, std::move(o.second));
                 });
}

}  // namespace detail
}  // namespace kadnet
