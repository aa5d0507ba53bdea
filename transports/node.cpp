#include "kadnet/transports/node.hpp"

namespace kadnet {

node::node(boost::asio::any_io_executor ex, core::identity self, core::node_config config,
           transports::dht_settings dht)
    : driver_(std::make_shared<transports::node_driver>(std::move(ex), std::move(self),
                                                       std::move(config), std::move(dht))) {}

node::~node() { stop(); }

uri node::listen(std::string_view where) {
  std::string problem;
  auto parsed = transports::parse_uri(where, &problem);
  if (!parsed) throw std::invalid_argument(problem);
  return listen(*parsed);
}

uri node::listen(const uri& where) {
  // Binding is synchronous so that a bad address fails at start-up; the accept loop then runs
  // on the strand.
  return driver_->listen(where);
}

void node::add_handler(std::uint8_t opcode, sync_handler handler) {
  register_handler(opcode, [h = std::move(handler)](const node_id& caller, byte_span payload,
                                                    core::plugin_reply reply) {
    reply(h(caller, payload));  // an exception reaches the engine, which NACKs handler_failed
  });
}

void node::add_async_handler(std::uint8_t opcode, async_handler handler) {
  // The engine's reply function must run on the strand, and not inside the engine's own call:
  // the application may call it from anywhere, so it is posted.
  register_handler(opcode, [d = std::weak_ptr(driver_), h = std::move(handler)](
                               const node_id& caller, byte_span payload, core::plugin_reply reply) {
    h(caller, payload, [d, reply](core::plugin_result result) {
      auto driver = d.lock();
      if (!driver) return;
      boost::asio::post(driver->executor(), [driver, reply, result = std::move(result)]() mutable {
        reply(std::move(result));
        driver->pump();
      });
    });
  });
}

void node::check_plugin_opcode(std::uint8_t opcode) {
  if (opcode < core::wire::first_plugin_opcode)
    throw std::invalid_argument("plugin opcode " + std::to_string(opcode) + " is reserved for kadnet; use 64..255");
}

void node::add_datagram_handler(std::uint8_t opcode, std::function<void(const node_id&, byte_span)> handler) {
  check_plugin_opcode(opcode);
  boost::asio::post(driver_->executor(), [d = driver_, opcode, h = std::move(handler)]() mutable {
    d->set_datagram_handler(opcode, std::move(h));
  });
}

void node::register_handler(std::uint8_t opcode, core::plugin_handler handler) {
  check_plugin_opcode(opcode);
  boost::asio::post(driver_->executor(), [d = driver_, opcode, h = std::move(handler)]() mutable {
    d->engine().plugins().add(opcode, std::move(h));
  });
}

void node::on_speak(speak_handler handler) {
  boost::asio::post(driver_->executor(), [d = driver_, h = std::move(handler)]() mutable { d->set_speak_handler(std::move(h)); });
}

void node::on_whisper(whisper_handler handler) {
  boost::asio::post(driver_->executor(), [d = driver_, h = std::move(handler)]() mutable { d->set_whisper_handler(std::move(h)); });
}

void node::on_shout(shout_handler handler) {
  boost::asio::post(driver_->executor(), [d = driver_, h = std::move(handler)]() mutable { d->set_shout_handler(std::move(h)); });
}

void node::set_log(std::function<void(const std::string&)> log) {
  boost::asio::post(driver_->executor(), [d = driver_, log = std::move(log)]() mutable {
    d->set_log(std::move(log));
  });
}

void node::set_udp_impairment(const transports::udp_impairment& impairment) {
  boost::asio::post(driver_->executor(), [d = driver_, impairment] { d->set_udp_impairment(impairment); });
}

void node::stop() {
  if (!driver_) return;
  boost::asio::post(driver_->executor(), [d = driver_] { d->stop(); });
}

}  // namespace kadnet
