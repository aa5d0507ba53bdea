// The receiving side of a file transfer (PROTOCOL.md 9.7): one coroutine on the node's strand
// per incoming stream — offer, checks, policy, accept or reject, chunks into NAME.part, verify,
// rename, verdict.
#include "kadnet/transports/file_receiver.hpp"

#include <atomic>
#include <mutex>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/transports/file_frame_io.hpp"
#include "kadnet/transports/local_file.hpp"
#include "kadnet/transports/stream_watchdog.hpp"

namespace kadnet {

namespace asio = boost::asio;
namespace wire = core::wire;
using boost::system::error_code;
using transports::blake2b_256;
using transports::local_file;

namespace {
// NAME.part must fit in a file name of 255 bytes, as most file systems allow.
constexpr std::string_view partial_suffix = ".part";
constexpr std::size_t max_stored_name = wire::max_file_name - partial_suffix.size();

// Whether anything (a symlink too) has that name; when that cannot be told, it is taken.
bool name_taken(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found;
}

// Cut at 255 bytes without splitting a UTF-8 sequence.
std::string reject_text(std::string text) {
  if (text.size() <= wire::max_reject_text) return text;
  std::size_t end = wire::max_reject_text;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  text.resize(end);
  return text;
}
}  // namespace

struct file_receiver::state : std::enable_shared_from_this<state> {
  explicit state(file_receiver_settings s) : settings(std::move(s)) {}

  file_receiver_settings settings;
  // Guards the callbacks against the destructor: once `stopped` is set under it, none runs again.
  std::mutex callbacks;
  std::atomic<bool> stopped{false};
  // Touched only by the coroutines, all on the node's strand.
  std::set<std::filesystem::path> active;

  file_decision decide(const file_offer_info& offer) {
    std::lock_guard lock(callbacks);
    if (stopped) return file_decision::reject(wire::file_reject_code::not_accepting, "the receiver is stopping");
    if (!settings.policy) return file_decision::reject(wire::file_reject_code::not_accepting, "this node accepts no files");
    return settings.policy(offer);
  }
  void progress(const file_offer_info& offer, std::uint64_t done) {
    std::lock_guard lock(callbacks);
    if (!stopped && settings.on_progress) settings.on_progress(offer, done);
  }
  void done(const file_offer_info& offer, error_code ec, const file_receive_result& result) {
    std::lock_guard lock(callbacks);
    if (!stopped && settings.on_done) settings.on_done(offer, ec, result);
  }

  // The coroutine holds the state, which outlives the receiver while transfers run.
  static asio::awaitable<void> receive(std::shared_ptr<state> self, stream s);
  void accept_next(node& n);
};

namespace {

// One incoming transfer: the stream, what was offered, and how it ends.
class transfer {
 public:
  transfer(file_receiver::state& owner, stream s)
      : owner_(owner), s_(std::move(s)), watch_(s_, owner.settings.idle_timeout) {
    offer_.peer = s_.peer();
  }
  // A transfer whose frame is destroyed unfinished (its io_context went away) reports nothing.
  ~transfer() {
    if (claimed_) owner_.active.erase(result_.path);
  }

  // The conversation up to the receiver's last word, which answer() then sends. (The endings
  // only decide: GCC 12 miscompiles temporaries of class type in co_await expressions, so every
  // coroutine here is called with lvalues and scalars only.)
  asio::awaitable<void> run();
  asio::awaitable<void> answer();

 private:
  // The endings. Each reports once.
  void reject(wire::file_reject_code code, std::string text, error_code ec);
  void violation();          // the sender broke the protocol: cut off, partial file removed
  void lost(error_code ec);  // the stream failed: the partial file stays for a resume
  void refuse_bytes(wire::file_verdict_code code, error_code ec);  // removed, and the sender told why
  void finish(error_code ec) { owner_.done(offer_, ec, result_); }
  void remove_partial() {
    file_.close();
    std::error_code ignored;
    std::filesystem::remove(partial_, ignored);
  }
  // Ends the stream's read side: the sender must have sent its FIN right after the last byte.
  asio::awaitable<bool> expect_end();

  file_receiver::state& owner_;
  stream s_;
  transports::stream_watchdog watch_;
  const std::function<void()> kick_ = [this] { watch_.kick(); };
  file_offer_info offer_;
  file_receive_result result_;
  std::filesystem::path partial_;
  local_file file_;
  bool claimed_ = false;  // result_.path is in owner_.active
  std::optional<wire::file_message> last_word_;  // a reject or a verdict, then the end
};

void transfer::reject(wire::file_reject_code code, std::string text, error_code ec) {
  result_.reject_code = code;
  result_.reason = reject_text(std::move(text));
  finish(ec);
  last_word_ = wire::file_reject{code, result_.reason};
}

void transfer::violation() {
  s_.reset();
  remove_partial();
  finish(file_errc::protocol_violation);
}

void transfer::lost(error_code ec) {
  s_.reset();
  finish(watch_.fired() ? make_error_code(core::errc::timeout) : ec);
}

void transfer::refuse_bytes(wire::file_verdict_code code, error_code ec) {
  remove_partial();
  finish(ec);
  last_word_ = wire::file_verdict{code};
}

asio::awaitable<void> transfer::answer() {
  if (!last_word_) co_return;
  co_await transports::write_file_frame(s_, *last_word_);
  s_.shutdown_send();  // and the stream closes as the coroutine ends
}

asio::awaitable<bool> transfer::expect_end() {
  wire::file_message extra;
  auto ec = co_await transports::read_file_frame(s_, extra);
  if (ec == asio::error::eof) co_return true;
  if (!ec || ec.category() == core::error_category()) violation();  // bytes beyond the offer
  else lost(ec);
  co_return false;
}

asio::awaitable<void> transfer::run() {
  using wire::file_reject_code;
  wire::file_message first;
  if (auto ec = co_await transports::read_file_frame(s_, first)) {
    if (ec.category() != core::error_category()) co_return lost(ec);
    co_return reject(file_reject_code::malformed, "malformed offer: " + ec.message(), file_errc::protocol_violation);
  }
  watch_.kick();
  auto* offer = std::get_if<wire::file_offer>(&first);
  if (!offer)
    co_return reject(file_reject_code::malformed, "expected an offer", file_errc::protocol_violation);
  offer_.name = offer->name;
  offer_.size = offer->size;
  offer_.digest = offer->digest;

  if (auto problem = wire::check_file_name(offer_.name); problem != wire::file_name_problem::none)
    co_return reject(file_reject_code::bad_name, std::string("the name ") + wire::describe(problem),
                     file_errc::bad_name);
  if (offer_.name.size() > max_stored_name)
    co_return reject(file_reject_code::bad_name,
                     "the name is longer than " + std::to_string(max_stored_name) + " bytes", file_errc::bad_name);
  if (offer_.size > owner_.settings.max_size)
    co_return reject(file_reject_code::too_large,
                     "files of at most " + std::to_string(owner_.settings.max_size) + " bytes are accepted",
                     file_errc::too_large);
  auto decision = owner_.decide(offer_);
  if (!decision.accept) co_return reject(decision.code, decision.reason, file_errc::rejected);

  result_.path = decision.directory / offer_.name;
  partial_ = decision.directory / (offer_.name + std::string(partial_suffix));
  if (owner_.active.size() >= owner_.settings.max_transfers)
    co_return reject(file_reject_code::busy, "too many transfers at once", file_errc::rejected);
  if (owner_.active.count(result_.path))
    co_return reject(file_reject_code::busy, "a file of that name is being received", file_errc::rejected);
  if (name_taken(result_.path))
    co_return reject(file_reject_code::exists, "a file of that name exists", file_errc::rejected);
  owner_.active.insert(result_.path);
  claimed_ = true;

  // What a partial file holds is offered for a resume: the sender checks it against its digest.
  error_code ec;
  file_ = local_file::open_partial(partial_, ec);
  std::uint64_t held = 0;
  if (!ec) held = file_.size(ec);
  if (!ec && held > offer_.size) {
    held = 0;  // longer than the offered file: not a prefix of it
    file_.truncate(0, ec);
  }
  blake2b_256 hash;
  if (!ec) ec = co_await transports::hash_file_range(file_, 0, held, hash, kick_);
  if (ec) co_return reject(file_reject_code::io_error, "cannot write the file: " + ec.message(), ec);
  blake2b_256 prefix = hash;
  const wire::file_message accept = wire::file_accept{held, prefix.finish()};
  if (auto wec = co_await transports::write_file_frame(s_, accept)) co_return lost(wec);

  wire::file_message start;
  if (auto rec = co_await transports::read_file_frame(s_, start)) {
    if (rec.category() == core::error_category() || rec == asio::error::eof) co_return violation();
    co_return lost(rec);
  }
  watch_.kick();
  auto* from = std::get_if<wire::file_start>(&start);
  if (!from || (from->offset != held && from->offset != 0)) co_return violation();
  if (from->offset == 0 && held > 0) {
    // The sender's file begins otherwise: what the partial file held is not this file.
    held = 0;
    file_.truncate(0, ec);
    if (ec) co_return refuse_bytes(wire::file_verdict_code::io_error, ec);
    hash.reset();
  }
  result_.resumed_from = held;
  std::uint64_t position = held;
  owner_.progress(offer_, position);

  while (position < offer_.size) {
    wire::file_message next;
    if (auto rec = co_await transports::read_file_frame(s_, next)) {
      if (rec == asio::error::eof)
        co_return refuse_bytes(wire::file_verdict_code::size_mismatch, file_errc::size_mismatch);
      if (rec.category() == core::error_category()) co_return violation();
      co_return lost(rec);
    }
    watch_.kick();
    auto* chunk = std::get_if<wire::file_chunk>(&next);
    if (!chunk || chunk->data.size() > offer_.size - position) co_return violation();
    file_.write_at(position, chunk->data, ec);
    if (ec) co_return refuse_bytes(wire::file_verdict_code::io_error, ec);
    hash.update(chunk->data);
    position += chunk->data.size();
    result_.bytes_received += chunk->data.size();
    if (owner_.stopped) co_return lost(file_errc::stopped);
    owner_.progress(offer_, position);
  }
  if (!co_await expect_end()) co_return;

  if (hash.finish() != offer_.digest)
    co_return refuse_bytes(wire::file_verdict_code::digest_mismatch, file_errc::digest_mismatch);
  // The name is given only to a verified, durable file, and before the sender hears ok: ok means
  // the file is in place.
  file_.sync(ec);
  file_.close();
  if (!ec && name_taken(result_.path)) ec = make_error_code(boost::system::errc::file_exists);
  if (!ec) {
    std::error_code moved;
    std::filesystem::rename(partial_, result_.path, moved);
    ec = moved;
  }
  if (ec) co_return refuse_bytes(wire::file_verdict_code::io_error, ec);
  finish({});
  last_word_ = wire::file_verdict{wire::file_verdict_code::ok};
}

}  // namespace

asio::awaitable<void> file_receiver::state::receive(std::shared_ptr<state> self, stream s) {
  transfer t(*self, std::move(s));
  co_await t.run();
  co_await t.answer();
}

void file_receiver::state::accept_next(node& n) {
  // The node is touched only while the receiver lives: the destructor takes this lock.
  std::lock_guard lock(callbacks);
  if (stopped) return;
  n.async_accept_stream(std::string(core::wire::file_stream_protocol), [self = shared_from_this(), &n](error_code ec, stream s) {
    if (ec || self->stopped) return;  // the node stopped, or the receiver is gone
    auto ex = s.get_executor();
    asio::co_spawn(ex, receive(self, std::move(s)), asio::detached);
    self->accept_next(n);
  });
}

file_receiver::file_receiver(node& n, file_receiver_settings settings)
    : node_(n), state_(std::make_shared<state>(std::move(settings))) {}

file_receiver::~file_receiver() {
  std::lock_guard lock(state_->callbacks);
  state_->stopped = true;
}

void file_receiver::start() {
  state_->accept_next(node_);
}

void file_receiver::handle(stream s) {
  auto ex = s.get_executor();
  asio::co_spawn(ex, state::receive(state_, std::move(s)), asio::detached);
}

}  // namespace kadnet
