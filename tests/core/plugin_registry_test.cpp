// Plugin handlers by opcode (core/plugin_registry.hpp).
#include <gtest/gtest.h>

#include <stdexcept>

#include "kadnet/core/plugin_registry.hpp"

namespace kadnet::core {
namespace {

// A handler that answers with one byte: which handler it is.
plugin_handler answering(std::uint8_t tag) {
  return [tag](const node_id&, byte_span, plugin_reply reply) { reply(byte_vector{tag}); };
}

std::uint8_t answer_of(const plugin_handler* h) {
  byte_vector got;
  (*h)(node_id{}, {}, [&](plugin_result r) { got = std::get<byte_vector>(r); });
  return got.at(0);
}

TEST(PluginRegistry, FindsEachHandlerByItsOpcodeWhateverTheOrderOfAdding) {
  plugin_registry r;
  for (std::uint8_t op : {200, 64, 255, 100}) r.add(op, answering(op));
  for (std::uint8_t op : {64, 100, 200, 255}) {
    ASSERT_NE(r.find(op), nullptr) << int(op);
    EXPECT_EQ(answer_of(r.find(op)), op);
  }
  for (std::uint8_t op : {0, 63, 65, 199, 254}) EXPECT_EQ(r.find(op), nullptr) << int(op);
}

TEST(PluginRegistry, AddingAgainReplacesAndRemovingForgets) {
  plugin_registry r;
  r.add(70, answering(1));
  r.add(71, answering(2));
  r.add(70, answering(3));
  EXPECT_EQ(answer_of(r.find(70)), 3);
  EXPECT_EQ(answer_of(r.find(71)), 2);
  r.remove(70);
  r.remove(99);  // never added: nothing happens
  EXPECT_EQ(r.find(70), nullptr);
  EXPECT_EQ(answer_of(r.find(71)), 2);
}

TEST(PluginRegistry, OpcodesBelow64AreRefused) {
  plugin_registry r;
  EXPECT_THROW(r.add(63, answering(0)), std::invalid_argument);
  EXPECT_THROW(r.add(0, answering(0)), std::invalid_argument);
  EXPECT_EQ(r.find(63), nullptr);
}

}  // namespace
}  // namespace kadnet::core
