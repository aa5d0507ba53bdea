#include "tools/cli_options.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kadnet::tools {
namespace {

using compression::codec_id;
using args = std::vector<std::string>;

// Parses `a`, expects std::invalid_argument, and returns its message.
std::string error_of(const args& a) {
  try {
    parse_node_options(a);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument thrown";
  return {};
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(CliOptions, NoArgumentsGiveTheDefaults) {
  auto o = parse_node_options({});
  EXPECT_TRUE(o.listen.empty());
  EXPECT_TRUE(o.bootstrap.empty());
  EXPECT_FALSE(o.identity_file.has_value());
  EXPECT_EQ(o.compression,
            (std::vector<codec_id>{codec_id::zstd, codec_id::snappy, codec_id::zlib}));
  EXPECT_FALSE(o.json);
  EXPECT_EQ(o.timeout_ms, 5000);
  EXPECT_FALSE(o.help);
}

TEST(CliOptions, Listen) {
  auto o = parse_node_options({"--listen", "tcp://127.0.0.1:4000"});
  ASSERT_EQ(o.listen.size(), 1u);
  EXPECT_EQ(o.listen[0], (transports::uri{"tcp", "127.0.0.1", 4000}));
  EXPECT_TRUE(o.bootstrap.empty());
}

TEST(CliOptions, RepeatedListenKeepsAllInOrder) {
  auto o = parse_node_options(
      {"--listen", "tcp://127.0.0.1:4000", "--listen", "tcp://[::1]:0", "--listen",
       "tcp://localhost:4001"});
  ASSERT_EQ(o.listen.size(), 3u);
  EXPECT_EQ(o.listen[0], (transports::uri{"tcp", "127.0.0.1", 4000}));
  EXPECT_EQ(o.listen[1], (transports::uri{"tcp", "::1", 0}));
  EXPECT_EQ(o.listen[2], (transports::uri{"tcp", "localhost", 4001}));
}

TEST(CliOptions, RepeatedBootstrapKeepsAllInOrder) {
  auto o = parse_node_options(
      {"--bootstrap", "tcp://10.0.0.1:4000", "--bootstrap", "tcp://10.0.0.2:4001"});
  ASSERT_EQ(o.bootstrap.size(), 2u);
  EXPECT_EQ(o.bootstrap[0], (transports::uri{"tcp", "10.0.0.1", 4000}));
  EXPECT_EQ(o.bootstrap[1], (transports::uri{"tcp", "10.0.0.2", 4001}));
  EXPECT_TRUE(o.listen.empty());
}

TEST(CliOptions, BadListenUriNamesFlagAndUri) {
  std::string what = error_of({"--listen", "quic://127.0.0.1:4000"});
  EXPECT_CONTAINS(what, "--listen");
  EXPECT_CONTAINS(what, "quic://127.0.0.1:4000");
}

TEST(CliOptions, BadBootstrapUriNamesFlagAndUri) {
  std::string what = error_of({"--bootstrap", "tcp://host:70000"});
  EXPECT_CONTAINS(what, "--bootstrap");
  EXPECT_CONTAINS(what, "tcp://host:70000");
}

TEST(CliOptions, Identity) {
  auto o = parse_node_options({"--identity", "/tmp/node.key"});
  ASSERT_TRUE(o.identity_file.has_value());
  EXPECT_EQ(*o.identity_file, "/tmp/node.key");
}

TEST(CliOptions, Json) {
  EXPECT_TRUE(parse_node_options({"--json"}).json);
}

TEST(CliOptions, HelpLongAndShort) {
  EXPECT_TRUE(parse_node_options({"--help"}).help);
  EXPECT_TRUE(parse_node_options({"-h"}).help);
}

TEST(CliOptions, Timeout) {
  EXPECT_EQ(parse_node_options({"--timeout", "250"}).timeout_ms, 250);
  EXPECT_EQ(parse_node_options({"--timeout", "1"}).timeout_ms, 1);
  EXPECT_EQ(parse_node_options({"--timeout", "86400000"}).timeout_ms, 86'400'000);
  for (const char* bad : {"0", "-5", "86400001", "4294967295", "5s"})
    EXPECT_THROW(parse_node_options({"--timeout", bad}), std::invalid_argument) << bad;
}

TEST(CliOptions, EveryFlagTogether) {
  auto o = parse_node_options({"--listen", "tcp://0.0.0.0:4000", "--bootstrap",
                               "tcp://seed.example:4000", "--identity", "me.key", "--compression",
                               "lzma", "--timeout", "1234", "--json", "--help"});
  ASSERT_EQ(o.listen.size(), 1u);
  EXPECT_EQ(o.listen[0].port, 4000);
  ASSERT_EQ(o.bootstrap.size(), 1u);
  EXPECT_EQ(o.bootstrap[0].host, "seed.example");
  EXPECT_EQ(o.identity_file, "me.key");
  EXPECT_EQ(o.compression, (std::vector<codec_id>{codec_id::lzma}));
  EXPECT_EQ(o.timeout_ms, 1234);
  EXPECT_TRUE(o.json);
  EXPECT_TRUE(o.help);
}

TEST(CliOptions, CompressionNoneIsEmpty) {
  EXPECT_TRUE(parse_node_options({"--compression", "none"}).compression.empty());
}

TEST(CliOptions, CompressionListKeepsOrder) {
  EXPECT_EQ(parse_node_options({"--compression", "zstd,gzip"}).compression,
            (std::vector<codec_id>{codec_id::zstd, codec_id::gzip}));
  EXPECT_EQ(parse_node_options({"--compression", "gzip,zstd"}).compression,
            (std::vector<codec_id>{codec_id::gzip, codec_id::zstd}));
}

TEST(CliOptions, CompressionAcceptsEveryCodecName) {
  std::string all;
  for (auto id : compression::all_codecs()) {
    EXPECT_EQ(parse_node_options({"--compression", std::string(compression::codec_name(id))})
                  .compression,
              (std::vector<codec_id>{id}));
    all += (all.empty() ? "" : ",") + std::string(compression::codec_name(id));
  }
  auto everything = parse_node_options({"--compression", all}).compression;
  EXPECT_EQ(everything, (std::vector<codec_id>(compression::all_codecs().begin(),
                                                compression::all_codecs().end())));
}

TEST(CliOptions, CompressionUnknownNameIsNamed) {
  std::string what = error_of({"--compression", "zstd,brotli"});
  EXPECT_CONTAINS(what, "--compression");
  EXPECT_CONTAINS(what, "'brotli'");
}

TEST(CliOptions, CompressionNamesAreCaseSensitive) {
  std::string what = error_of({"--compression", "ZSTD"});
  EXPECT_CONTAINS(what, "'ZSTD'");
}

TEST(CliOptions, CompressionEmptyItemsAreRejected) {
  for (std::string list : {"", ",", "zstd,", ",zstd", "zstd,,gzip"}) {
    std::string what = error_of({"--compression", list});
    EXPECT_CONTAINS(what, "--compression: unknown method ''");
  }
}

TEST(CliOptions, CompressionNoneMixedWithOthersIsRejected) {
  for (std::string list : {"zstd,none", "none,zstd"}) {
    std::string what = error_of({"--compression", list});
    EXPECT_CONTAINS(what, "'none' stands alone");
    EXPECT_EQ(what.find("unknown method"), std::string::npos) << what;
  }
}

TEST(CliOptions, CompressionDuplicateIsNamed) {
  std::string what = error_of({"--compression", "zstd,gzip,zstd"});
  EXPECT_CONTAINS(what, "--compression");
  EXPECT_CONTAINS(what, "'zstd'");
  EXPECT_CONTAINS(what, "twice");
}

TEST(CliOptions, LaterCompressionFlagReplacesEarlier) {
  EXPECT_EQ(parse_node_options({"--compression", "gzip", "--compression", "bz2"}).compression,
            (std::vector<codec_id>{codec_id::bz2}));
}

TEST(CliOptions, TimeoutBadValuesAreNamed) {
  for (std::string bad : {"0", "-5", "abc", "", "10ms", " 10", "1.5", "+10", "99999999999"}) {
    std::string what = error_of({"--timeout", bad});
    EXPECT_CONTAINS(what, "--timeout");
    EXPECT_CONTAINS(what, "'" + bad + "'");
  }
}

TEST(CliOptions, UnknownArgumentIsNamed) {
  EXPECT_CONTAINS(error_of({"--verbose"}), "unknown argument '--verbose'");
  EXPECT_CONTAINS(error_of({"--listen", "tcp://127.0.0.1:1", "extra"}),
                  "unknown argument 'extra'");
  EXPECT_CONTAINS(error_of({"--LISTEN", "tcp://127.0.0.1:1"}), "'--LISTEN'");
}

TEST(CliOptions, FlagMissingItsValueIsNamed) {
  for (std::string flag : {"--listen", "--bootstrap", "--identity", "--compression", "--timeout"}) {
    EXPECT_EQ(error_of({flag}), flag + " needs a value");
    EXPECT_EQ(error_of({"--json", flag}), flag + " needs a value");
  }
}

TEST(CliOptions, UsageMentionsEveryFlag) {
  std::string usage = usage_text;
  for (const char* flag :
       {"--listen", "--bootstrap", "--identity", "--compression", "--timeout", "--json", "--help", "--inbox"})
    EXPECT_CONTAINS(usage, flag);
  EXPECT_CONTAINS(usage, "sendfile URI|ID PATH");
}

TEST(CliOptions, Inbox) {
  EXPECT_FALSE(parse_node_options({}).inbox.has_value());
  EXPECT_EQ(parse_node_options({"--inbox", "/tmp/in box"}).inbox, "/tmp/in box");
  EXPECT_EQ(error_of({"--inbox"}), "--inbox needs a value");
}

}  // namespace
}  // namespace kadnet::tools
