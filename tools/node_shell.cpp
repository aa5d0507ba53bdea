#include "tools/node_shell.hpp"

#include <charconv>
#include <filesystem>
#include <future>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <csignal>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/utf8.hpp"
#include "tools/transfer_progress.hpp"
#include "kadnet/transports/file_transfer.hpp"
#include "kadnet/transports/node.hpp"
#include "kadnet/transports/wait_for.hpp"

namespace kadnet::tools {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
namespace wire = core::wire;

constexpr std::uint8_t echo_opcode = 64;

// Prints results as text or as one JSON object per line; safe from any thread. On a terminal,
// progress can be a line redrawn in place, which the next output replaces.
class printer {
 public:
  printer(std::ostream& out, bool json, bool terminal) : out_(out), json_(json), terminal_(terminal && !json) {}

  bool terminal() const { return terminal_; }

  void result(json::object fields, const std::string& text) {
    std::lock_guard lock(mutex_);
    clear_progress();
    if (json_) out_ << json::serialize(fields) << "\n";
    else out_ << text << "\n";
    out_.flush();
  }
  // A progress report: redrawn in place on a terminal, a line of its own otherwise.
  void progress(json::object fields, const std::string& text) {
    std::lock_guard lock(mutex_);
    if (json_) out_ << json::serialize(fields) << "\n";
    else if (terminal_) out_ << "\r" << text << "\x1b[K";
    else out_ << text << "\n";
    progress_shown_ = terminal_;
    out_.flush();
  }
  void error(const std::string& command, const std::string& message) {
    result({{"cmd", command}, {"ok", false}, {"error", message}}, command + ": " + message);
  }
  void log(const std::string& line) { result({{"event", "log"}, {"text", line}}, "log: " + line); }

 private:
  void clear_progress() {
    if (progress_shown_) out_ << "\r\x1b[K";
    progress_shown_ = false;
  }

  std::ostream& out_;
  bool json_;
  bool terminal_;
  bool progress_shown_ = false;
  std::mutex mutex_;
};

// Text from peers (names, reasons) goes to terminals and JSON: control characters are shown as
// '?', and so is every non-ASCII byte of text that is not UTF-8.
std::string printable(std::string_view text) {
  std::string out(text);
  bool utf8 = wire::valid_utf8(as_bytes(text));
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || (u >= 0x80 && !utf8)) c = '?';
  }
  return out;
}

// Message payloads from peers, printed as text.
std::string printable(byte_span bytes) {
  return printable(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

const char* reject_code_name(wire::file_reject_code code) {
  using c = wire::file_reject_code;
  switch (code) {
    case c::unspecified: return "unspecified";
    case c::declined: return "declined";
    case c::bad_name: return "bad_name";
    case c::too_large: return "too_large";
    case c::not_accepting: return "not_accepting";
    case c::exists: return "exists";
    case c::busy: return "busy";
    case c::io_error: return "io_error";
    case c::malformed: return "malformed";
  }
  return "unspecified";
}

using transports::wait_for;

std::string describe(const boost::system::error_code& ec, const core::reply& r) {
  std::string s = ec.message();
  if (!r.text.empty() && r.text != s) s += " (peer said: " + r.text + ")";
  return s;
}

class shell {
 public:
  shell(const node_options& o, std::ostream& out, bool terminal)
      : options_(o),
        print_(out, o.json, terminal),
        node_(io_.get_executor(), load_identity(o), make_config(o), make_dht(o)) {
    node_.add_handler(echo_opcode, [](const core::node_id&, byte_span payload) {
      return byte_vector(payload.begin(), payload.end());
    });
    node_.set_log([this](const std::string& line) { print_.log(line); });
    print_incoming_messages();
    for (const auto& u : o.listen) bound_.push_back(node_.listen(u));
    start_receiver();
    stop_on_signal();
    io_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }

  ~shell() {
    // Waits for the stop to run, so that peers get its farewell (PROTOCOL.md 9.4) and their
    // transfers end now rather than at their idle timeout.
    node_.async_stop(asio::use_future).get();
    signals_.cancel();
    io_.stop();
    io_thread_.join();
  }

  void bootstrap() {
    for (const auto& u : options_.bootstrap) {
      auto [ec, peer] = wait_for<boost::system::error_code, core::node_id>(
          [&](auto cb) { node_.async_connect(u, std::nullopt, cb); });
      if (ec) print_.error("bootstrap", u.to_string() + ": " + ec.message());
      else print_.result({{"event", "connected"}, {"peer", peer.to_hex()}, {"uri", u.to_string()}},
                         "connected to " + peer.to_hex() + " at " + u.to_string());
    }
    if (options_.bootstrap.empty() && !options_.data_dir) return;
    // With no bootstrap peer, a node restarted with its data directory rejoins through the
    // contacts it saved.
    bool rejoin = options_.bootstrap.empty();
    auto [ec, found] = wait_for<boost::system::error_code, dht::find_node_result>([&](auto cb) {
      if (rejoin) node_.dht().rejoin(cb);
      else node_.dht().bootstrap(cb);
    });
    if (rejoin && ec == core::errc::not_connected) return;  // nothing saved yet, or all gone
    if (ec) return print_.error("join", ec.message());
    print_.result({{"event", "joined"}, {"contacts", found.closest.size()}, {"rounds", found.stats.rounds}},
                  "joined the DHT: " + std::to_string(found.closest.size()) + " closest nodes found in " +
                      std::to_string(found.stats.rounds) + " rounds");
  }

  void run(std::istream& in) {
    print_id();
    bootstrap();
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string command;
      if (!(words >> command)) continue;
      if (command == "quit" || command == "exit") break;
      execute(command, words);
    }
  }

 private:
  // Ctrl-C or SIGTERM stops the node as `quit` does (peers get its farewell, the data directory
  // its routing table), then ends the process: the shell's thread may be blocked reading input.
  void stop_on_signal() {
    // Asio's handler, with SA_RESTART added (Boost 1.81's signal_set cannot ask for it): the
    // shell's read of its input goes on instead of failing as if the input had ended.
    for (int signal : {SIGINT, SIGTERM}) {
      struct sigaction action {};
      ::sigaction(signal, nullptr, &action);
      action.sa_flags |= SA_RESTART;
      ::sigaction(signal, &action, nullptr);
    }
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      // A second Ctrl-C, should the stop hang, ends the process at once.
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      print_.log("stopping: signal " + std::to_string(signal));
      // Then dies by the same signal (its default action now), as a shell expects of a program
      // it interrupted. The printer flushed every line.
      node_.async_stop([signal] {
        std::raise(signal);
        std::_Exit(128 + signal);  // were the signal blocked in this thread
      });
    });
  }

  static core::identity load_identity(const node_options& o) {
    if (o.identity_file) return core::identity::load_or_create(*o.identity_file);
    if (o.data_dir) return core::identity::in_data_dir(*o.data_dir);
    return core::identity::generate();
  }

  static transports::dht_settings make_dht(const node_options& o) {
    transports::dht_settings s;
    if (o.data_dir) s.data_dir = *o.data_dir;
    s.config.routing.max_per_prefix = 0;  // a CLI node may well see all its peers on one host
    return s;
  }

  static core::node_config make_config(const node_options& o) {
    core::node_config c;
    c.compression = o.compression;
    c.request_timeout = std::chrono::milliseconds(o.timeout_ms);
    return c;
  }

  void print_id() {
    json::array listening;
    std::string text = "id " + node_.id().to_hex();
    for (const auto& u : bound_) {
      listening.push_back(json::value(u.to_string()));
      text += "\nlistening " + u.to_string();
    }
    json::object result{{"cmd", "id"}, {"ok", true}, {"id", node_.id().to_hex()}, {"listening", listening}};
    // How the last peer to answer our ANNOUNCE sees us: behind a NAT, the NAT's address.
    if (auto seen = node_.async_observed_address(asio::use_future).get()) {
      result["observed"] = *seen;
      text += "\nseen by peers as " + *seen;
    }
    print_.result(std::move(result), text);
  }

  void execute(const std::string& command, std::istringstream& words) {
    if (command == "id") return print_id();
    if (command == "help") return print_.result({{"cmd", "help"}, {"ok", true}, {"text", usage_text}}, usage_text);
    if (command == "ping") return ping(words);
    if (command == "send") return send(words);
    if (command == "sendfile") return sendfile(words);
    if (command == "peers") return peers();
    if (command == "put") return put(words);
    if (command == "get") return get(words);
    if (command == "cas") return cas(words);
    if (command == "lock") return lock(words);
    if (command == "unlock") return unlock(words);
    if (command == "patch") return patch(words);
    if (command == "listen") return listen(words);
    if (command == "unlisten") return unlisten(words);
    if (command == "find") return find(words);
    if (command == "shout") return shout(words);
    if (command == "speak") return speak(words);
    if (command == "whisper") return whisper(words);
    if (command == "buckets") return buckets();
    if (command == "stats") return stats();
    print_.error(command, "unknown command; usage: id | ping URI|ID | send URI|ID OPCODE TEXT | sendfile URI|ID PATH | "
                          "put KEY VALUE | get KEY | cas KEY VERSION VALUE | lock KEY SECONDS | unlock KEY TOKEN | patch KEY VERSION OFFSET REMOVE TEXT | listen KEY | unlisten KEY | find ID | shout TEXT | speak TEXT | whisper ID TEXT | "
                          "buckets | peers | stats | help | quit");
  }

  std::optional<peer_ref> target(const std::string& command, std::istringstream& words, const char* usage) {
    std::string text;
    if (!(words >> text)) {
      print_.error(command, std::string("missing peer; usage: ") + usage);
      return std::nullopt;
    }
    std::string problem;
    auto ref = transports::parse_peer_ref(text, &problem);
    if (!ref) print_.error(command, problem + "; usage: " + usage);
    return ref;
  }

  void ping(std::istringstream& words) {
    auto ref = target("ping", words, "ping URI|ID");
    if (!ref) return;
    auto [ec, rtt] = wait_for<boost::system::error_code, std::chrono::microseconds>(
        [&](auto cb) { node_.async_ping(*ref, cb); });
    if (ec) return print_.error("ping", ec.message());
    double ms = static_cast<double>(rtt.count()) / 1000.0;
    std::ostringstream text;
    text << "pong in " << std::fixed << std::setprecision(3) << ms << " ms";
    print_.result({{"cmd", "ping"}, {"ok", true}, {"rtt_ms", ms}}, text.str());
  }

  void send(std::istringstream& words) {
    const char* usage = "send URI|ID OPCODE TEXT";
    auto ref = target("send", words, usage);
    if (!ref) return;
    std::string opcode_text;
    unsigned opcode = 0;
    if (!(words >> opcode_text)) return print_.error("send", std::string("missing OPCODE; usage: ") + usage);
    auto [end, perr] = std::from_chars(opcode_text.data(), opcode_text.data() + opcode_text.size(), opcode);
    if (perr != std::errc() || end != opcode_text.data() + opcode_text.size() || opcode < 64 || opcode > 255)
      return print_.error("send", "OPCODE '" + opcode_text + "' must be a number from 64 to 255; usage: " + usage);
    std::string text;
    std::getline(words >> std::ws, text);
    auto [ec, r] = wait_for<boost::system::error_code, core::reply>([&](auto cb) {
      node_.async_call(*ref, static_cast<std::uint8_t>(opcode), byte_vector(text.begin(), text.end()), cb);
    });
    if (ec) return print_.error("send", describe(ec, r));
    std::string reply(r.data.begin(), r.data.end());
    print_.result({{"cmd", "send"}, {"ok", true}, {"reply", reply}}, "reply: " + reply);
  }

  // Offers are answered on the node's strand: accepted into --inbox, refused without one.
  void start_receiver() {
    if (options_.inbox) {
      inbox_ = fs::absolute(*options_.inbox);
      std::error_code ec;
      fs::create_directories(inbox_, ec);
      if (ec) throw std::runtime_error("--inbox " + *options_.inbox + " cannot be made: " + ec.message());
    }
    file_receiver_settings s;
    s.policy = [this](const file_offer_info& f) {
      if (inbox_.empty())
        return file_decision::reject(wire::file_reject_code::not_accepting,
                                     "this node accepts no files (it runs without --inbox)");
      print_.result({{"event", "file_offer"}, {"peer", f.peer.to_hex()}, {"name", printable(f.name)},
                     {"size", f.size}, {"inbox", inbox_.string()}},
                    "file offer from " + f.peer.to_hex() + ": " + printable(f.name) + " (" +
                        std::to_string(f.size) + " bytes)");
      return file_decision::accept_into(inbox_);
    };
    s.on_progress = [this](const file_offer_info& f, std::uint64_t done) {
      auto now = transfer_meter::clock::now();
      auto& meter = incoming_.try_emplace(f.peer.to_hex() + "/" + f.name, f.size, now).first->second;
      // Lines, not a bar: the user may be typing a command.
      if (!meter.update(done, false, now)) return;
      print_.result({{"event", "file_progress"}, {"peer", f.peer.to_hex()}, {"name", printable(f.name)},
                     {"bytes", done}, {"size", f.size}, {"mb_per_s", meter.mb_per_s()}},
                    meter.line("receiving", printable(f.name)));
    };
    s.on_done = [this](const file_offer_info& f, boost::system::error_code ec, const file_receive_result& r) {
      incoming_.erase(f.peer.to_hex() + "/" + f.name);
      const std::string name = printable(f.name), peer = f.peer.to_hex();
      if (!ec)
        return print_.result({{"event", "file_received"}, {"ok", true}, {"peer", peer}, {"name", name},
                              {"path", r.path.string()}, {"size", f.size}, {"resumed_from", r.resumed_from}},
                             "received " + name + " (" + std::to_string(f.size) + " bytes) from " + peer + ": " +
                                 r.path.string());
      if (r.reject_code)
        return print_.result({{"event", "file_refused"}, {"peer", peer}, {"name", name}, {"size", f.size},
                              {"code", reject_code_name(*r.reject_code)}, {"reason", printable(r.reason)}},
                             "refused file '" + name + "' from " + peer + ": " + printable(r.reason));
      print_.result({{"event", "file_received"}, {"ok", false}, {"peer", peer}, {"name", name}, {"error", ec.message()}},
                    "receiving '" + name + "' from " + peer + " failed: " + ec.message());
    };
    receiver_ = std::make_unique<file_receiver>(node_, std::move(s));
    receiver_->start();
  }

  void sendfile(std::istringstream& words) {
    const char* usage = "sendfile URI|ID PATH";
    auto ref = target("sendfile", words, usage);
    if (!ref) return;
    std::string path;
    std::getline(words >> std::ws, path);
    if (path.empty()) return print_.error("sendfile", std::string("missing PATH; usage: ") + usage);
    // Name the file in what goes wrong with it before the library's errno says it alone.
    std::error_code fec;
    auto status = fs::status(path, fec);
    if (fec || !fs::exists(status))
      return print_.error("sendfile", "cannot read '" + path + "': " + (fec ? fec.message() : "no such file"));
    if (!fs::is_regular_file(status)) return print_.error("sendfile", "'" + path + "' is not a regular file");
    const std::string name = fs::path(path).filename().string();
    if (auto problem = wire::check_file_name(name); problem != wire::file_name_problem::none)
      return print_.error("sendfile", "the file name '" + printable(name) + "' cannot be sent: it " +
                                          wire::describe(problem));

    const auto start = transfer_meter::clock::now();
    const bool terminal = print_.terminal();
    std::optional<transfer_meter> meter;  // touched by the progress callback only, on the node's strand
    auto [ec, r] = wait_for<boost::system::error_code, file_send_result>([&](auto cb) {
      async_send_file(
          node_, *ref, path,
          [&, this](std::uint64_t done, std::uint64_t total) {
            if (!meter) meter.emplace(total, start);
            if (!meter->update(done, terminal, transfer_meter::clock::now())) return;
            print_.progress({{"event", "send_progress"}, {"name", printable(name)}, {"bytes", done}, {"size", total},
                             {"mb_per_s", meter->mb_per_s()}},
                            terminal ? meter->bar(printable(name)) : meter->line("sending", printable(name)));
          },
          cb);
    });
    if (ec == file_errc::rejected) {
      auto code = reject_code_name(r.reject_code.value_or(wire::file_reject_code::unspecified));
      return print_.result({{"cmd", "sendfile"}, {"ok", false}, {"code", code}, {"reason", printable(r.reason)},
                            {"error", "the peer refused " + printable(name) + ": " + printable(r.reason)}},
                           "sendfile: the peer refused " + printable(name) + ": " + printable(r.reason) + " (" +
                               code + ")");
    }
    if (ec) return print_.error("sendfile", "sending '" + path + "' failed: " + ec.message());
    double seconds = std::chrono::duration<double>(transfer_meter::clock::now() - start).count();
    double mb_per_s = seconds > 0 ? static_cast<double>(r.bytes_sent) / seconds / 1e6 : 0.0;
    std::ostringstream text;
    text << "sent " << printable(name) << " (" << r.size << " bytes";
    if (r.resumed_from > 0) text << ", resumed from byte " << r.resumed_from;
    text << ") in " << std::fixed << std::setprecision(2) << seconds << " s, " << std::setprecision(1) << mb_per_s
         << " MB/s";
    print_.result({{"cmd", "sendfile"}, {"ok", true}, {"name", printable(name)}, {"size", r.size},
                   {"sent", r.bytes_sent}, {"resumed_from", r.resumed_from}, {"seconds", seconds},
                   {"mb_per_s", mb_per_s}, {"blake2b", to_hex(r.digest)}},
                  text.str());
  }

  void put(std::istringstream& words) {
    std::string key, value;
    if (!(words >> key)) return print_.error("put", "missing KEY; usage: put KEY VALUE");
    std::getline(words >> std::ws, value);
    if (value.empty()) return print_.error("put", "missing VALUE; usage: put KEY VALUE");
    auto [ec, r] = wait_for<boost::system::error_code, dht::put_outcome>([&](auto cb) {
      node_.dht().put(text_key(key), byte_vector(value.begin(), value.end()), cb);
    });
    if (ec == core::errc::too_large)
      return print_.error("put", "VALUE is " + std::to_string(value.size()) + " bytes; a value is at most " +
                                     std::to_string(dht::default_max_value_size) + " bytes");
    if (ec) return print_.error("put", ec.message());
    print_.result({{"cmd", "put"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"version", r.version},
                   {"replicas", r.replicas}},
                  "stored version " + std::to_string(r.version) + " on " + std::to_string(r.replicas) + " node(s)");
  }

  void get(std::istringstream& words) {
    std::string key;
    if (!(words >> key)) return print_.error("get", "missing KEY; usage: get KEY");
    auto [ec, r] = wait_for<boost::system::error_code, dht::get_result>(
        [&](auto cb) { node_.dht().get(text_key(key), cb); });
    if (ec) return print_.error("get", ec.message());
    std::string value(r.value->value.begin(), r.value->value.end());
    print_.result({{"cmd", "get"}, {"ok", true}, {"value", value}, {"version", r.value->version},
                   {"rounds", r.stats.rounds}},
                  "value: " + value + " (version " + std::to_string(r.value->version) + ")");
  }

  void cas(std::istringstream& words) {
    const char* usage = "; usage: cas KEY VERSION VALUE";
    std::string key, version_text, value;
    if (!(words >> key)) return print_.error("cas", std::string("missing KEY") + usage);
    if (!(words >> version_text)) return print_.error("cas", std::string("missing VERSION") + usage);
    std::uint64_t expected = 0;
    auto [end, problem] = std::from_chars(version_text.data(), version_text.data() + version_text.size(), expected);
    if (problem != std::errc{} || end != version_text.data() + version_text.size())
      return print_.error("cas", "VERSION '" + version_text + "' is not a number" + usage);
    std::getline(words >> std::ws, value);
    if (value.empty()) return print_.error("cas", std::string("missing VALUE") + usage);
    auto [ec, r] = wait_for<boost::system::error_code, dht::cas_outcome>([&](auto cb) {
      node_.dht().cas(text_key(key), expected, byte_vector(value.begin(), value.end()), cb);
    });
    if (ec == core::errc::cas_conflict) {
      std::string current = r.value ? std::string(r.value->begin(), r.value->end()) : std::string();
      json::object o{{"cmd", "cas"}, {"ok", false}, {"error", ec.message()}, {"version", r.version}};
      if (r.value) o["value"] = current;
      return print_.result(std::move(o), "conflict: the key is at version " + std::to_string(r.version) +
                                             (r.value ? ", value: " + current : std::string(" (no value)")));
    }
    if (ec) return print_.error("cas", ec.message());
    print_.result({{"cmd", "cas"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"version", r.version}},
                  "written as version " + std::to_string(r.version));
  }

  // patch KEY VERSION OFFSET REMOVE TEXT: the shell holds no values, so it reads KEY first (a get,
  // which takes the first value on the lookup's path) and splices TEXT into that copy; a copy at
  // another version is reported and nothing is written.
  void patch(std::istringstream& words) {
    const char* usage = "; usage: patch KEY VERSION OFFSET REMOVE TEXT";
    std::string key;
    if (!(words >> key)) return print_.error("patch", std::string("missing KEY") + usage);
    std::uint64_t numbers[3] = {};
    const char* names[3] = {"VERSION", "OFFSET", "REMOVE"};
    for (int i = 0; i < 3; ++i) {
      std::string text;
      if (!(words >> text)) return print_.error("patch", std::string("missing ") + names[i] + usage);
      auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), numbers[i]);
      if (problem != std::errc{} || end != text.data() + text.size())
        return print_.error("patch", std::string(names[i]) + " '" + text + "' is not a number" + usage);
    }
    // Plain names, not a structured binding: the lambdas below capture them (clang 14 cannot).
    const std::uint64_t version = numbers[0], offset = numbers[1], remove = numbers[2];
    std::string text;
    if (words.peek() == ' ') words.get();  // one separator; the rest, spaces included, is TEXT
    std::getline(words, text);

    auto [gec, got] = wait_for<boost::system::error_code, dht::get_result>(
        [&](auto cb) { node_.dht().get(text_key(key), cb); });
    if (gec == core::errc::not_found) return print_.error("patch", "KEY holds no value to patch (use put)");
    if (gec) return print_.error("patch", "reading the current value failed: " + gec.message());
    if (got.value->version != version)
      return print_.result({{"cmd", "patch"}, {"ok", false}, {"version", got.value->version},
                            {"error", "the key is at version " + std::to_string(got.value->version)}},
                           "conflict: the key is at version " + std::to_string(got.value->version));
    const byte_vector& base = got.value->value;
    if (offset > base.size() || remove > base.size() - offset)
      return print_.error("patch", "OFFSET + REMOVE (" + std::to_string(offset) + " + " + std::to_string(remove) +
                                       ") reaches past the value's " + std::to_string(base.size()) + " bytes");
    dht::value_patch diff{{dht::splice{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(remove),
                                       byte_vector(text.begin(), text.end())}}};
    auto [ec, r] = wait_for<boost::system::error_code, dht::patch_outcome>([&](auto cb) {
      node_.dht().patch(text_key(key), version, base, std::move(diff), cb);
    });
    if (ec) return print_.error("patch", ec.message());
    byte_vector next = base;
    next.erase(next.begin() + static_cast<std::ptrdiff_t>(offset),
               next.begin() + static_cast<std::ptrdiff_t>(offset + remove));
    next.insert(next.begin() + static_cast<std::ptrdiff_t>(offset), text.begin(), text.end());
    std::string value = printable(next);
    print_.result({{"cmd", "patch"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"version", r.version},
                   {"replicas", r.replicas}, {"by_diff", r.by_diff}, {"by_whole", r.by_whole},
                   {"bytes_sent", r.bytes_sent}, {"value", value}},
                  "stored version " + std::to_string(r.version) + " on " + std::to_string(r.replicas) + " node(s) (" +
                      std::to_string(r.by_diff) + " by diff, " + std::to_string(r.by_whole) + " whole; " +
                      std::to_string(r.bytes_sent) + " bytes sent): " + value);
  }

  // The next word as a number, or an error naming `what` for `command`.
  std::optional<std::uint64_t> number_word(std::istringstream& words, const char* command, const char* what,
                                           const char* usage) {
    std::string text;
    if (!(words >> text)) {
      print_.error(command, std::string("missing ") + what + "; usage: " + usage);
      return std::nullopt;
    }
    std::uint64_t n = 0;
    auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (problem != std::errc{} || end != text.data() + text.size()) {
      print_.error(command, std::string(what) + " '" + text + "' is not a number; usage: " + usage);
      return std::nullopt;
    }
    return n;
  }

  void lock(std::istringstream& words) {
    const char* usage = "lock KEY SECONDS";
    std::string key;
    if (!(words >> key)) return print_.error("lock", std::string("missing KEY; usage: ") + usage);
    auto seconds = number_word(words, "lock", "SECONDS", usage);
    if (!seconds) return;
    if (*seconds == 0 || *seconds > 24 * 3600) return print_.error("lock", "SECONDS must be 1 .. 86400; usage: " + std::string(usage));
    auto [ec, r] = wait_for<boost::system::error_code, dht::lock_outcome>(
        [&](auto cb) { node_.dht().lock(text_key(key), std::chrono::seconds(*seconds), cb); });
    if (ec == core::errc::locked) {
      return print_.result({{"cmd", "lock"}, {"ok", false}, {"error", ec.message()}, {"holder", r.holder.to_hex()},
                            {"token", r.token}, {"remaining_ms", r.remaining.count()}},
                           "locked by " + r.holder.to_hex() + " for " + std::to_string(r.remaining.count()) + " ms more");
    }
    if (ec) return print_.error("lock", ec.message());
    print_.result({{"cmd", "lock"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"token", r.token}},
                  "locked, fencing token " + std::to_string(r.token));
  }

  void unlock(std::istringstream& words) {
    const char* usage = "unlock KEY TOKEN";
    std::string key;
    if (!(words >> key)) return print_.error("unlock", std::string("missing KEY; usage: ") + usage);
    auto token = number_word(words, "unlock", "TOKEN", usage);
    if (!token) return;
    auto [ec, r] = wait_for<boost::system::error_code, dht::lock_outcome>(
        [&](auto cb) { node_.dht().unlock(text_key(key), *token, cb); });
    if (ec) return print_.error("unlock", ec.message());
    print_.result({{"cmd", "unlock"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"token", r.token}},
                  "unlocked (token " + std::to_string(r.token) + ")");
  }

  // listen KEY: every new version is printed as it arrives (on the node's strand), until unlisten.
  void listen(std::istringstream& words) {
    std::string key;
    if (!(words >> key)) return print_.error("listen", "missing KEY; usage: listen KEY");
    if (subscriptions_.contains(key)) return print_.error("listen", "already listening to '" + key + "'");
    auto on_version = [this, key](const dht::listen_delivery& d) {
      std::string value = printable(d.value.value);
      json::object fields{{"event", "version"}, {"key", key}, {"version", d.value.version}, {"value", value}};
      std::string change;
      if (d.diff) {
        std::size_t inserted = 0;
        for (const auto& s : d.diff->splices) inserted += s.inserted.size();
        fields["diff_splices"] = d.diff->splices.size();
        change = " (a diff: " + std::to_string(d.diff->splices.size()) + " splice(s), " + std::to_string(inserted) +
                 " byte(s) inserted)";
      }
      print_.result(std::move(fields), key + " version " + std::to_string(d.value.version) + ": " + value + change);
    };
    auto [ec, r] = wait_for<boost::system::error_code, dht::listen_outcome>(
        [&](auto cb) { node_.dht().listen(text_key(key), on_version, cb); });
    if (ec) return print_.error("listen", ec.message());
    subscriptions_[key] = r.subscription;
    print_.result({{"cmd", "listen"}, {"ok", true}, {"key", text_key(key).to_hex()}, {"replicas", r.replicas}},
                  "listening to " + key + " at " + std::to_string(r.replicas) + " node(s)");
  }

  void unlisten(std::istringstream& words) {
    std::string key;
    if (!(words >> key)) return print_.error("unlisten", "missing KEY; usage: unlisten KEY");
    auto it = subscriptions_.find(key);
    if (it == subscriptions_.end()) return print_.error("unlisten", "not listening to '" + key + "'");
    auto [ec] = wait_for<boost::system::error_code>([&](auto cb) { node_.dht().cancel(it->second, cb); });
    subscriptions_.erase(it);
    if (ec) return print_.error("unlisten", ec.message());
    print_.result({{"cmd", "unlisten"}, {"ok", true}, {"key", text_key(key).to_hex()}}, "stopped listening to " + key);
  }

  void find(std::istringstream& words) {
    std::string text;
    if (!(words >> text)) return print_.error("find", "missing ID; usage: find ID");
    auto id = core::node_id::from_hex(text);
    if (!id) return print_.error("find", "'" + text + "' is not a NodeId (64 hex digits); usage: find ID");
    auto [ec, r] = wait_for<boost::system::error_code, dht::find_node_result>(
        [&](auto cb) { node_.dht().find_node(*id, cb); });
    if (ec) return print_.error("find", ec.message());
    json::array arr;
    std::string out = std::to_string(r.closest.size()) + " closest node(s), " + std::to_string(r.stats.rounds) + " rounds";
    for (const auto& c : r.closest) {
      json::array addresses;
      for (const auto& a : c.addresses) addresses.push_back(json::value(a));
      arr.push_back(json::object{{"id", c.id.to_hex()}, {"addresses", addresses}});
      out += "\n  " + c.id.to_hex() + (c.addresses.empty() ? "" : " " + c.addresses.front());
    }
    print_.result({{"cmd", "find"}, {"ok", true}, {"nodes", arr}, {"rounds", r.stats.rounds}}, out);
  }

  // Incoming SHOUT, SPEAK and WHISPER are printed as they arrive (on the node's strand); the
  // shell forwards no speak.
  void print_incoming_messages() {
    node_.on_shout([this](const dht::shout_delivery& s) {
      std::string text = printable(s.payload);
      print_.result({{"event", "shout"}, {"origin", s.origin.to_hex()}, {"sequence", s.sequence}, {"hops", s.hops},
                     {"text", text}},
                    "shout from " + s.origin.short_hex() + " (hops " + std::to_string(s.hops) + "): " + text);
    });
    node_.on_speak([this](const core::node_id& origin, const core::node_id& from, byte_span payload) {
      std::string text = printable(payload);
      std::string via = from == origin ? "" : " via " + from.short_hex();
      print_.result({{"event", "speak"}, {"origin", origin.to_hex()}, {"from", from.to_hex()}, {"text", text}},
                    "speak from " + origin.short_hex() + via + ": " + text);
      return false;
    });
    node_.on_whisper([this](const core::node_id& sender, byte_span plaintext, bool sealed) {
      std::string text = printable(plaintext);
      print_.result({{"event", "whisper"}, {"sender", sender.to_hex()}, {"sealed", sealed}, {"text", text}},
                    "whisper from " + sender.short_hex() + (sealed ? "" : " (not sealed)") + ": " + text);
    });
  }

  // The rest of the line as a message, or nullopt after saying it is missing.
  std::optional<byte_vector> message_text(const std::string& command, std::istringstream& words, const char* usage) {
    std::string text;
    std::getline(words >> std::ws, text);
    if (!text.empty()) return byte_vector(text.begin(), text.end());
    print_.error(command, std::string("missing TEXT; usage: ") + usage);
    return std::nullopt;
  }

  void shout(std::istringstream& words) {
    auto text = message_text("shout", words, "shout TEXT");
    if (!text) return;
    const std::size_t size = text->size();
    auto [ec, r] = wait_for<boost::system::error_code, dht::shout_outcome>(
        [&](auto cb) { node_.async_shout(std::move(*text), cb); });
    if (ec == core::errc::too_large)
      return print_.error("shout", "TEXT is " + std::to_string(size) + " bytes; a shout is at most " +
                                       std::to_string(dht::broadcast_config{}.max_payload) + " bytes");
    if (ec) return print_.error("shout", ec.message());
    print_.result({{"cmd", "shout"}, {"ok", true}, {"sequence", r.sequence}, {"delegates", r.delegates}},
                  "shouted (sequence " + std::to_string(r.sequence) + "), handed to " + std::to_string(r.delegates) +
                      " node(s)");
  }

  void speak(std::istringstream& words) {
    auto text = message_text("speak", words, "speak TEXT");
    if (!text) return;
    auto [ec, peers] = wait_for<boost::system::error_code, std::size_t>(
        [&](auto cb) { node_.async_speak(std::move(*text), cb); });
    if (ec == core::errc::not_connected) return print_.error("speak", "no direct peer to speak to");
    if (ec) return print_.error("speak", ec.message());
    print_.result({{"cmd", "speak"}, {"ok", true}, {"peers", peers}},
                  "spoke to " + std::to_string(peers) + " direct peer(s)");
  }

  void whisper(std::istringstream& words) {
    std::string id_text;
    if (!(words >> id_text)) return print_.error("whisper", "missing ID; usage: whisper ID TEXT");
    auto id = core::node_id::from_hex(id_text);
    if (!id) return print_.error("whisper", "'" + id_text + "' is not a NodeId (64 hex digits); usage: whisper ID TEXT");
    auto text = message_text("whisper", words, "whisper ID TEXT");
    if (!text) return;
    if (*id == node_.id()) return print_.error("whisper", "that is this node's own id");
    auto [ec] = wait_for<boost::system::error_code>(
        [&](auto cb) { node_.async_whisper(*id, std::move(*text), cb); });
    if (ec == core::errc::peer_not_found) return print_.error("whisper", "node " + id->short_hex() + " not found in the DHT");
    if (ec == core::errc::bad_field)
      return print_.error("whisper", "'" + id_text + "' is not an Ed25519 public key: no node can have that id");
    if (ec) return print_.error("whisper", ec.message());
    print_.result({{"cmd", "whisper"}, {"ok", true}, {"to", id->to_hex()}},
                  "whispered to " + id->short_hex() + " (sealed; receipt checked)");
  }

  void buckets() {
    auto view = std::get<0>(wait_for<std::vector<dht::bucket_view>>([&](auto cb) { node_.dht().buckets(cb); }));
    json::array arr;
    std::string out;
    std::size_t total = 0;
    for (const auto& b : view) {
      json::array ids;
      for (const auto& c : b.contacts) ids.push_back(json::value(c.id.to_hex()));
      arr.push_back(json::object{{"depth", b.depth}, {"contacts", ids}, {"replacements", b.replacements}});
      total += b.contacts.size();
      out += "bucket depth " + std::to_string(b.depth) + ": " + std::to_string(b.contacts.size()) +
             " contact(s), " + std::to_string(b.replacements) + " replacement(s)\n";
      for (const auto& c : b.contacts)
        out += "  " + c.id.to_hex() + (c.addresses.empty() ? " (dials out only)" : " " + c.addresses.front()) + "\n";
    }
    out += std::to_string(total) + " contact(s) in " + std::to_string(view.size()) + " bucket(s)";
    print_.result({{"cmd", "buckets"}, {"ok", true}, {"buckets", arr}}, out);
  }

  void peers() {
    auto list = node_.async_peers(asio::use_future).get();
    json::array arr;
    std::string text = std::to_string(list.size()) + " peer(s)";
    for (const auto& p : list) {
      std::string method = p.sending_with ? std::string(compression::codec_name(*p.sending_with)) : "none";
      arr.push_back(json::object{{"id", p.peer.to_hex()}, {"inbound", p.inbound}, {"compression", method},
                                 {"address", p.seen_at}, {"relayed", p.relayed}, {"messages_in", p.counters.messages_in}, {"messages_out", p.counters.messages_out}});
      text += "\n  " + p.peer.to_hex() + (p.inbound ? " inbound " : " outbound") + " compression " + method +
              (p.relayed ? " relayed" : p.seen_at.empty() ? "" : " at " + p.seen_at);
    }
    print_.result({{"cmd", "peers"}, {"ok", true}, {"peers", arr}}, text);
  }

  void stats() {
    auto s = node_.async_stats(asio::use_future).get();
    auto m = node_.async_message_stats(asio::use_future).get();
    json::object o{{"cmd", "stats"},
                   {"ok", true},
                   {"sessions_opened", s.sessions_opened},
                   {"handshakes_failed", s.handshakes_failed},
                   {"version_refusals", s.version_refusals},
                   {"peers_cut_off", s.peers_cut_off},
                   {"requests_sent", s.requests_sent},
                   {"requests_received", s.requests_received},
                   {"timeouts", s.timeouts},
                   {"nacks_sent", s.nacks_sent},
                   {"malformed_messages", s.malformed_messages},
                   {"datagrams_dropped", s.datagrams_dropped},
                   {"introductions", s.introductions},
                   {"introductions_refused", s.introductions_refused},
                   {"punches_wanted", s.punches_wanted},
                   {"punches_received", s.punches_received},
                   {"circuits_relayed", s.circuits_relayed},
                   {"relayed_bytes", s.relayed_bytes},
                   {"relayed_sessions_accepted", s.relayed_sessions_accepted},
                   {"packets_in", s.sessions.packets_in},
                   {"packets_out", s.sessions.packets_out},
                   {"auth_failures", s.sessions.auth_failures},
                   {"replays", s.sessions.replays},
                   {"cookie_challenges", s.sessions.cookie_challenges},
                   {"malformed_packets", s.sessions.malformed},
                   {"shouts_received", m.shouts_received},
                   {"speaks_received", m.speaks_received},
                   {"speaks_duplicate", m.speaks_duplicate},
                   {"whispers_received", m.whispers_received},
                   {"whispers_unopened", m.whispers_unopened},
                   {"whispers_misattributed", m.whispers_misattributed}};
    std::string text;
    for (const auto& [k, v] : o) {
      if (k == "cmd" || k == "ok") continue;
      text += std::string(k) + " " + json::serialize(v) + "\n";
    }
    text.pop_back();
    print_.result(o, text);
  }

  node_options options_;
  printer print_;
  asio::io_context io_;
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  node node_;
  std::vector<uri> bound_;
  std::thread io_thread_;
  fs::path inbox_;  // empty: offered files are refused
  std::map<std::string, transfer_meter> incoming_;  // by peer/name; on the node's strand
  std::map<std::string, dht::operation_id> subscriptions_;  // listen: by KEY as typed; on the shell's thread
  // Last: destroyed first, so that its callbacks never see the members above gone.
  std::unique_ptr<file_receiver> receiver_;
};

}  // namespace

int run_node_shell(const node_options& options, std::istream& in, std::ostream& out) {
  shell s(options, out, &out == &std::cout && ::isatty(STDOUT_FILENO));
  s.run(in);
  return 0;
}

}  // namespace kadnet::tools
