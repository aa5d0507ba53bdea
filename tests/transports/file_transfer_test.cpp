// File transfer on kadnet streams (transports/file_transfer.hpp, PROTOCOL.md 9.7) between real
// nodes on loopback over UDP, TCP and WebSocket: whole files, resumes, refused names,
// rejections, and senders that lie — the latter speak the frames themselves over a raw
// kadnet::stream.
#include "kadnet/transports/file_transfer.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>

#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <sodium.h>

#include "kadnet/core/errors.hpp"
#include "tests/support/byte_pattern.hpp"
#include "tests/support/loopback_nodes.hpp"

namespace kadnet {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace wire = core::wire;
using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;

constexpr auto pattern = testing::byte_pattern;

file_digest digest(byte_span bytes) {
  file_digest d;
  crypto_generichash(d.data(), d.size(), bytes.data(), bytes.size(), nullptr, 0);
  return d;
}

void write_file(const fs::path& p, byte_span bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

byte_vector read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return byte_vector(std::istreambuf_iterator<char>(in), {});
}

// Every file under a directory, recursively, relative to it.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// What the receiver reported for one stream.
struct received {
  file_offer_info offer;
  error_code ec;
  file_receive_result result;
  std::vector<std::uint64_t> progress;
};

// Two nodes on loopback over the transport under test, a scratch directory (src/ and inbox/),
// and a receiver on node 1 whose completions tests wait for.
class FileTransfer : public ::testing::TestWithParam<std::string> {
 protected:
  FileTransfer() : net_(GetParam()), a_(net_.add()), b_(net_.add()) {
    std::random_device rd;
    root_ = fs::temp_directory_path() / ("kadnet-file-transfer-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(src());
    fs::create_directories(inbox());
  }
  ~FileTransfer() override {
    receiver_.reset();  // before the nodes; no callback runs after this
    error_code ignored;
    fs::remove_all(root_, ignored);
  }

  fs::path src() const { return root_ / "src"; }
  fs::path inbox() const { return root_ / "inbox"; }

  // Starts the receiver on node b; `policy` defaults to accepting into inbox/.
  void receive(std::function<file_decision(const file_offer_info&)> policy = {}, std::uint64_t max_size = 1ull << 32,
               std::chrono::milliseconds idle_timeout = std::chrono::seconds(120)) {
    file_receiver_settings s;
    s.max_size = max_size;
    s.idle_timeout = idle_timeout;
    s.policy = policy ? std::move(policy) : [this](const file_offer_info&) { return file_decision::accept_into(inbox()); };
    s.on_progress = [this](const file_offer_info&, std::uint64_t done) {
      std::lock_guard lock(mutex_);
      progress_.push_back(done);
      changed_.notify_all();
    };
    s.on_done = [this](const file_offer_info& offer, error_code ec, const file_receive_result& r) {
      std::lock_guard lock(mutex_);
      done_.push_back({offer, ec, r, std::exchange(progress_, {})});
      changed_.notify_all();
    };
    receiver_ = std::make_unique<file_receiver>(b_, std::move(s));
    receiver_->start();
  }

  // The receiver's next completion (a completion signal, not a sleep: the bound only turns a hang
  // into a failure).
  received next_done() {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::seconds(60), [&] { return !done_.empty(); })) {
      ADD_FAILURE() << "the receiver reported nothing";
      return {};
    }
    auto r = std::move(done_.front());
    done_.pop_front();
    return r;
  }

  // Waits until the transfer in progress has `bytes` of its file.
  void wait_progress(std::uint64_t bytes) {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(changed_.wait_for(lock, std::chrono::seconds(60),
                                  [&] { return !progress_.empty() && progress_.back() >= bytes; }));
  }

  std::tuple<error_code, file_send_result> send(const fs::path& path, std::vector<std::uint64_t>* progress = nullptr) {
    return wait<error_code, file_send_result>([&](auto h) {
      async_send_file(a_, net_.address(1), path,
                      [progress](std::uint64_t done, std::uint64_t total) {
                        if (progress) progress->push_back(done);
                        EXPECT_LE(done, total);
                      },
                      h);
    });
  }

  // A raw stream from a to b, for speaking the frames by hand.
  stream open_raw() {
    auto [ec, s] = wait<error_code, stream>(
        [&](auto h) { a_.async_open_stream(net_.address(1), std::string(wire::file_stream_protocol), h); });
    EXPECT_FALSE(ec) << ec.message();
    return std::move(s);
  }
  static void put(stream& s, const wire::file_message& m) {
    byte_vector frame;
    wire::encode(m, frame);
    EXPECT_EQ(asio::async_write(s, asio::buffer(frame), asio::use_future).get(), frame.size());
  }
  static void put_bytes(stream& s, const byte_vector& bytes) {
    EXPECT_EQ(asio::async_write(s, asio::buffer(bytes), asio::use_future).get(), bytes.size());
  }
  // Reads one frame; nullopt (and `ec` set) when the stream ends or fails instead.
  static std::optional<wire::file_message> get(stream& s, error_code* ec = nullptr) {
    std::array<std::uint8_t, 4> head{};
    auto [hec, n] = wait<error_code, std::size_t>([&](auto h) { asio::async_read(s, asio::buffer(head), h); });
    if (hec) {
      if (ec) *ec = hec;
      return std::nullopt;
    }
    wire::file_frame_header header;
    EXPECT_FALSE(wire::decode_header(head, header));
    byte_vector body(header.length);
    auto [bec, m] = wait<error_code, std::size_t>([&](auto h) { asio::async_read(s, asio::buffer(body), h); });
    EXPECT_FALSE(bec) << bec.message();
    wire::file_message out;
    EXPECT_FALSE(wire::decode_body(header, body, out));
    return out;
  }
  // Offers `name` by hand and returns the receiver's answer.
  wire::file_message offer_raw(stream& s, const std::string& name, const byte_vector& content) {
    put(s, wire::file_offer{content.size(), digest(content), name});
    auto answer = get(s);
    EXPECT_TRUE(answer.has_value());
    return answer.value_or(wire::file_verdict{});
  }

  loopback_nodes net_;
  node& a_;
  node& b_;
  fs::path root_;
  std::unique_ptr<file_receiver> receiver_;
  std::mutex mutex_;  // guards progress_ and done_
  std::vector<std::uint64_t> progress_;  // the receiver's, of the transfer in progress
  std::condition_variable changed_;
  std::deque<received> done_;
};

void expect_monotonic_to(const std::vector<std::uint64_t>& progress, std::uint64_t from, std::uint64_t to) {
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.front(), from);
  EXPECT_EQ(progress.back(), to);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
}

TEST_P(FileTransfer, AFiveMebibyteFileArrivesIntact) {
  receive();
  const auto content = pattern(5 << 20, 1);
  write_file(src() / "data.bin", content);
  std::vector<std::uint64_t> progress;
  auto [ec, sent] = send(src() / "data.bin", &progress);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.name, "data.bin");
  EXPECT_EQ(sent.size, content.size());
  EXPECT_EQ(sent.bytes_sent, content.size());
  EXPECT_EQ(sent.resumed_from, 0u);
  EXPECT_EQ(sent.digest, digest(content));
  expect_monotonic_to(progress, 0, content.size());

  auto got = next_done();
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.offer.peer, a_.id());
  EXPECT_EQ(got.offer.name, "data.bin");
  EXPECT_EQ(got.result.path, inbox() / "data.bin");
  EXPECT_EQ(got.result.bytes_received, content.size());
  expect_monotonic_to(got.progress, 0, content.size());
  auto stored = read_file(inbox() / "data.bin");
  EXPECT_EQ(digest(stored), digest(content));
  EXPECT_TRUE(stored == content);
  EXPECT_EQ(listing(inbox()), std::vector<std::string>{"data.bin"});  // no .part left behind
}

TEST_P(FileTransfer, ANodeThatTakesNoFilesRefusesTheStreamAndOtherStreamsStillReachIt) {
  // No receiver at b: nobody serves the file protocol there.
  write_file(src() / "unwanted", pattern(1000, 21));
  auto [ec, sent] = send(src() / "unwanted");
  EXPECT_EQ(ec, core::errc::protocol_not_served) << ec.message();
  EXPECT_EQ(sent.bytes_sent, 0u);
  // A stream of the default protocol still goes to b's application.
  auto [oec, out] = wait<error_code, stream>([&](auto h) { a_.async_open_stream(net_.address(1), h); });
  ASSERT_FALSE(oec) << oec.message();
  auto [aec, in] = wait<error_code, stream>([&](auto h) { b_.async_accept_stream(h); });
  ASSERT_FALSE(aec) << aec.message();
  EXPECT_EQ(in.protocol(), "");
}

TEST_P(FileTransfer, AnEmptyFileArrivesToo) {
  receive();
  write_file(src() / "empty", {});
  auto [ec, sent] = send(src() / "empty");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.bytes_sent, 0u);
  EXPECT_FALSE(next_done().ec);
  EXPECT_TRUE(fs::exists(inbox() / "empty"));
  EXPECT_EQ(fs::file_size(inbox() / "empty"), 0u);
}

TEST_P(FileTransfer, APartialFileIsResumedAndOnlyTheRestIsSent) {
  receive();
  const auto content = pattern(3 << 20, 2);
  const std::size_t held = 1234567;
  write_file(src() / "big.iso", content);
  write_file(inbox() / "big.iso.part", byte_span(content).first(held));
  std::vector<std::uint64_t> progress;
  auto [ec, sent] = send(src() / "big.iso", &progress);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.resumed_from, held);
  EXPECT_EQ(sent.bytes_sent, content.size() - held);
  expect_monotonic_to(progress, held, content.size());
  auto got = next_done();
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.result.resumed_from, held);
  EXPECT_EQ(got.result.bytes_received, content.size() - held);
  expect_monotonic_to(got.progress, held, content.size());
  EXPECT_TRUE(read_file(inbox() / "big.iso") == content);
  EXPECT_FALSE(fs::exists(inbox() / "big.iso.part"));
}

TEST_P(FileTransfer, APartialFileOfAnotherFileIsReplacedFromTheStart) {
  receive();
  const auto content = pattern(1 << 20, 3);
  write_file(src() / "f", content);
  write_file(inbox() / "f.part", pattern(5000, 99));  // same name, other bytes
  auto [ec, sent] = send(src() / "f");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.resumed_from, 0u);
  EXPECT_EQ(sent.bytes_sent, content.size());
  EXPECT_FALSE(next_done().ec);
  EXPECT_TRUE(read_file(inbox() / "f") == content);
}

TEST_P(FileTransfer, APartialFileLongerThanTheOfferIsNotAPrefix) {
  receive();
  const auto content = pattern(10000, 4);
  write_file(src() / "g", content);
  auto longer = content;
  longer.resize(20000, 1);
  write_file(inbox() / "g.part", longer);
  auto [ec, sent] = send(src() / "g");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.bytes_sent, content.size());
  EXPECT_FALSE(next_done().ec);
  EXPECT_TRUE(read_file(inbox() / "g") == content);
}

TEST_P(FileTransfer, NamesTheSenderCannotOfferFailBeforeAnythingIsSent) {
  receive();
  for (const char* name : {"back\\slash", "..dotdot", "x.part", "ctl\x01"}) {
    write_file(src() / name, pattern(10, 5));
    auto [ec, sent] = send(src() / name);
    EXPECT_EQ(ec, file_errc::bad_name) << name << ": " << ec.message();
  }
  auto [ec, sent] = send(src() / "missing");
  EXPECT_EQ(ec, boost::system::errc::no_such_file_or_directory) << ec.message();
  auto [dir_ec, dir_sent] = send(src());
  EXPECT_EQ(dir_ec, file_errc::not_a_file) << dir_ec.message();
  auto [proc_ec, proc_sent] = send("/proc/self/stat");  // says 0 bytes, reads as more
  EXPECT_EQ(proc_ec, file_errc::size_unknown) << proc_ec.message();
  auto [sys_ec, sys_sent] = send("/sys/kernel/mm/transparent_hugepage/enabled");  // says 4,096 bytes
  if (sys_ec != boost::system::errc::no_such_file_or_directory) {  // present on most kernels, not all
    EXPECT_EQ(sys_ec, file_errc::size_unknown) << sys_ec.message();
  }
  // Nothing reached the receiver: the next thing it reports is this file.
  write_file(src() / "ok", pattern(10, 6));
  EXPECT_FALSE(std::get<0>(send(src() / "ok")));
  EXPECT_EQ(next_done().offer.name, "ok");
}

TEST_P(FileTransfer, AReceiverRefusesBadNamesAndWritesNothingOutsideItsInbox) {
  receive();
  const auto content = pattern(100, 7);
  const std::string bad[] = {"../escape", "/etc/passwd", "a/b", "..", ".", "..hidden", std::string("nul\0byte", 8),
                             "a\\b", "bell\x07", "y.part", std::string(251, 'n'), "\xc0\xaf"};
  for (const auto& name : bad) {
    auto s = open_raw();
    auto answer = offer_raw(s, name, content);
    auto* no = std::get_if<wire::file_reject>(&answer);
    ASSERT_NE(no, nullptr) << name;
    EXPECT_EQ(no->code, wire::file_reject_code::bad_name) << name;
    EXPECT_NE(no->text.find("name"), std::string::npos) << no->text;
    auto got = next_done();
    EXPECT_EQ(got.ec, file_errc::bad_name) << name;
    EXPECT_EQ(got.result.reject_code, wire::file_reject_code::bad_name);
  }
  // A name longer than 255 bytes does not even make a valid offer frame.
  auto s = open_raw();
  byte_vector frame;
  wire::encode(wire::file_offer{1, {}, std::string(255, 'x')}, frame);
  frame[3] += 1;  // length 296
  frame.push_back('x');
  put_bytes(s, frame);
  auto answer = get(s);
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(std::holds_alternative<wire::file_reject>(*answer));
  EXPECT_EQ(std::get<wire::file_reject>(*answer).code, wire::file_reject_code::malformed);
  EXPECT_EQ(next_done().ec, file_errc::protocol_violation);

  EXPECT_TRUE(listing(inbox()).empty());
  EXPECT_EQ(listing(root_), (std::vector<std::string>{"inbox", "src"}));
}

TEST_P(FileTransfer, TheReceiversReasonReachesTheSender) {
  receive([](const file_offer_info& offer) {
    EXPECT_EQ(offer.name, "doc.txt");
    EXPECT_EQ(offer.size, 42u);
    return file_decision::reject(wire::file_reject_code::declined, "not from you, thanks");
  });
  write_file(src() / "doc.txt", pattern(42, 8));
  auto [ec, sent] = send(src() / "doc.txt");
  EXPECT_EQ(ec, file_errc::rejected);
  EXPECT_EQ(sent.reject_code, wire::file_reject_code::declined);
  EXPECT_EQ(sent.reason, "not from you, thanks");
  auto got = next_done();
  EXPECT_EQ(got.ec, file_errc::rejected);
  EXPECT_EQ(got.result.reason, "not from you, thanks");
  EXPECT_TRUE(listing(inbox()).empty());
}

TEST_P(FileTransfer, WithoutAPolicyEveryOfferIsRejected) {
  file_receiver_settings s;
  receiver_ = std::make_unique<file_receiver>(b_, std::move(s));
  receiver_->start();
  write_file(src() / "x", pattern(1, 9));
  auto [ec, sent] = send(src() / "x");
  EXPECT_EQ(ec, file_errc::rejected);
  EXPECT_EQ(sent.reject_code, wire::file_reject_code::not_accepting);
  EXPECT_FALSE(sent.reason.empty());
}

TEST_P(FileTransfer, SizeLimitAndExistingFilesAreRejected) {
  receive({}, 1000);
  write_file(src() / "large", pattern(1001, 10));
  auto [ec, sent] = send(src() / "large");
  EXPECT_EQ(ec, file_errc::rejected);
  EXPECT_EQ(sent.reject_code, wire::file_reject_code::too_large);
  EXPECT_NE(sent.reason.find("1000"), std::string::npos) << sent.reason;
  EXPECT_EQ(next_done().ec, file_errc::too_large);

  write_file(src() / "twice", pattern(10, 11));
  EXPECT_FALSE(std::get<0>(send(src() / "twice")));
  EXPECT_FALSE(next_done().ec);
  auto [again, second] = send(src() / "twice");
  EXPECT_EQ(again, file_errc::rejected);
  EXPECT_EQ(second.reject_code, wire::file_reject_code::exists);
}

TEST_P(FileTransfer, ASenderThatSendsMoreThanItOfferedIsCutOff) {
  receive();
  const auto content = pattern(1000, 12);
  {
    // One chunk one byte longer than the offer.
    auto s = open_raw();
    auto answer = offer_raw(s, "liar1", content);
    ASSERT_TRUE(std::holds_alternative<wire::file_accept>(answer));
    put(s, wire::file_start{0});
    auto more = content;
    more.push_back(0);
    put(s, wire::file_chunk{more});
    error_code ec;
    EXPECT_FALSE(get(s, &ec).has_value());
    EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
    auto got = next_done();
    EXPECT_EQ(got.ec, file_errc::protocol_violation);
  }
  {
    // The offered bytes, then one more in a chunk of its own.
    auto s = open_raw();
    offer_raw(s, "liar2", content);
    put(s, wire::file_start{0});
    put(s, wire::file_chunk{content});
    put(s, wire::file_chunk{{1}});
    EXPECT_EQ(next_done().ec, file_errc::protocol_violation);
    error_code ec;
    EXPECT_FALSE(get(s, &ec).has_value());
    EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  }
  {
    // The offered bytes, then a stray byte and the end.
    auto s = open_raw();
    offer_raw(s, "liar3", content);
    put(s, wire::file_start{0});
    put(s, wire::file_chunk{content});
    put_bytes(s, {0x53});
    s.shutdown_send();
    EXPECT_EQ(next_done().ec, file_errc::protocol_violation);
  }
  EXPECT_TRUE(listing(inbox()).empty());  // neither final files nor partial ones
}

TEST_P(FileTransfer, BytesWithAnotherDigestOrTooFewAreRefusedAndRemoved) {
  receive();
  const auto content = pattern(100000, 13);
  {
    auto s = open_raw();
    put(s, wire::file_offer{content.size(), digest(pattern(100000, 14)), "wrong_digest"});
    ASSERT_TRUE(get(s).has_value());
    put(s, wire::file_start{0});
    for (std::size_t at = 0; at < content.size(); at += wire::max_file_chunk) {
      auto end = std::min(content.size(), at + wire::max_file_chunk);
      put(s, wire::file_chunk{byte_vector(content.begin() + at, content.begin() + end)});
    }
    s.shutdown_send();
    auto verdict = get(s);
    ASSERT_TRUE(verdict.has_value());
    EXPECT_EQ(std::get<wire::file_verdict>(*verdict).code, wire::file_verdict_code::digest_mismatch);
    EXPECT_EQ(next_done().ec, file_errc::digest_mismatch);
  }
  {
    auto s = open_raw();
    offer_raw(s, "too_few", content);
    put(s, wire::file_start{0});
    put(s, wire::file_chunk{byte_vector(content.begin(), content.begin() + 1000)});
    s.shutdown_send();
    auto verdict = get(s);
    ASSERT_TRUE(verdict.has_value());
    EXPECT_EQ(std::get<wire::file_verdict>(*verdict).code, wire::file_verdict_code::size_mismatch);
    EXPECT_EQ(next_done().ec, file_errc::size_mismatch);
  }
  {
    // A start offset the receiver never offered.
    auto s = open_raw();
    offer_raw(s, "bad_start", content);
    put(s, wire::file_start{10});
    EXPECT_EQ(next_done().ec, file_errc::protocol_violation);
  }
  EXPECT_TRUE(listing(inbox()).empty());
}

TEST_P(FileTransfer, ASenderThatVanishesLeavesAPartialFileToResume) {
  receive();
  const auto content = pattern(200000, 15);
  {
    auto s = open_raw();
    offer_raw(s, "cut.bin", content);
    put(s, wire::file_start{0});
    put(s, wire::file_chunk{byte_vector(content.begin(), content.begin() + 50000)});
    wait_progress(50000);  // the receiver wrote them
    s.reset();
    EXPECT_EQ(next_done().ec, asio::error::connection_reset);
  }
  EXPECT_EQ(fs::file_size(inbox() / "cut.bin.part"), 50000u);
  write_file(src() / "cut.bin", content);
  auto [ec, sent] = send(src() / "cut.bin");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent.resumed_from, 50000u);
  EXPECT_EQ(sent.bytes_sent, content.size() - 50000);
  EXPECT_FALSE(next_done().ec);
  EXPECT_TRUE(read_file(inbox() / "cut.bin") == content);
}

TEST_P(FileTransfer, ASenderThatStallsIsCutOffAfterTheIdleTimeout) {
  receive({}, 1ull << 32, std::chrono::milliseconds(1000));
  const auto content = pattern(100000, 18);
  auto st = open_raw();
  offer_raw(st, "stalled", content);
  put(st, wire::file_start{0});
  put(st, wire::file_chunk{byte_vector(content.begin(), content.begin() + 1000)});
  wait_progress(1000);
  // ... and nothing more: the receiver's completion is the signal.
  auto got = next_done();
  EXPECT_EQ(got.ec, core::errc::timeout) << got.ec.message();
  error_code ec;
  EXPECT_FALSE(get(st, &ec).has_value());
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  EXPECT_EQ(fs::file_size(inbox() / "stalled.part"), 1000u);  // kept for a resume
}

TEST_P(FileTransfer, AnApplicationsOwnAcceptLoopHandsStreamsOver) {
  file_receiver_settings s;
  s.policy = [this](const file_offer_info&) { return file_decision::accept_into(inbox()); };
  s.on_done = [this](const file_offer_info& offer, error_code ec, const file_receive_result& r) {
    std::lock_guard lock(mutex_);
    done_.push_back({offer, ec, r, {}});
    changed_.notify_all();
  };
  receiver_ = std::make_unique<file_receiver>(b_, std::move(s));
  const auto content = pattern(70000, 16);
  write_file(src() / "handed", content);
  // Asked before the send starts: until then b serves no file streams and would refuse it.
  auto accepted = b_.async_accept_stream(std::string(wire::file_stream_protocol), asio::use_future);
  auto sending = std::async(std::launch::async, [&] { return send(src() / "handed"); });
  receiver_->handle(accepted.get());
  EXPECT_FALSE(std::get<0>(sending.get()));
  EXPECT_FALSE(next_done().ec);
  EXPECT_TRUE(read_file(inbox() / "handed") == content);
}

INSTANTIATE_TEST_SUITE_P(Loopback, FileTransfer, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kadnet
