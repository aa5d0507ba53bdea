#include "kadnet/transports/file_frame_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "kadnet/core/errors.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;
using boost::system::error_code;

asio::awaitable<error_code> read_file_frame(stream& s, core::wire::file_message& out) {
  if (!s.is_open()) co_return make_error_code(asio::error::operation_aborted);
  constexpr auto token = asio::as_tuple(asio::use_awaitable);
  std::array<std::uint8_t, core::wire::file_frame_header_size> head{};
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(head), token);
  if (ec == asio::error::eof && n > 0) co_return make_error_code(core::errc::truncated);
  if (ec) co_return ec;
  core::wire::file_frame_header header;
  if (auto bad = core::wire::decode_header(head, header)) co_return bad;
  byte_vector body(header.length);
  auto [body_ec, got] = co_await asio::async_read(s, asio::buffer(body), token);
  if (body_ec == asio::error::eof) co_return make_error_code(core::errc::truncated);
  if (body_ec) co_return body_ec;
  co_return core::wire::decode_body(header, body, out);
}

asio::awaitable<error_code> write_file_frame(stream& s, const core::wire::file_message& m) {
  if (!s.is_open()) co_return make_error_code(asio::error::operation_aborted);
  byte_vector frame;
  core::wire::encode(m, frame);
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

}  // namespace kadnet::transports
