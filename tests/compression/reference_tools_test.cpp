// Interoperability with the reference implementations: what the real tools write, our codecs
// read, and what our codecs write, the tools read back to the same bytes. The tools are
// required (run.sh installs them); a missing one fails the test and names its Debian package.
#include <snappy.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "kadnet/compression/codec.hpp"

namespace {

namespace fs = std::filesystem;
namespace kc = kadnet::compression;
using bytes = std::vector<std::uint8_t>;

// Half text, half noise, with long repeats: exercises literals, matches and block boundaries.
bytes sample(std::size_t size) {
  std::mt19937 rng(20240601);
  const std::string_view text = "a kademlia node keeps k-buckets of peers ordered by distance; ";
  bytes out;
  while (out.size() < size) {
    switch (rng() % 3) {
      case 0: out.insert(out.end(), text.begin(), text.end()); break;
      case 1: for (int i = 0; i < 200; ++i) out.push_back(static_cast<std::uint8_t>(rng())); break;
      default: out.insert(out.end(), 300, static_cast<std::uint8_t>(rng()));
    }
  }
  out.resize(size);
  return out;
}

void write_file(const fs::path& path, const bytes& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

bytes read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

int run(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_command(const std::string& name) {
  return run("command -v " + name + " >/dev/null 2>&1") == 0;
}

// A scratch directory per test, removed afterwards.
class ReferenceTools : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kadnet_compression_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // The tool reads `in` from the given file and writes to the other.
  bytes tool_compress(const std::string& command, const bytes& input) {
    write_file(dir_ / "plain", input);
    EXPECT_EQ(run(command + " < " + quoted(dir_ / "plain") + " > " + quoted(dir_ / "packed")), 0)
        << command;
    return read_file(dir_ / "packed");
  }
  bytes tool_decompress(const std::string& command, const bytes& input) {
    write_file(dir_ / "packed", input);
    EXPECT_EQ(run(command + " < " + quoted(dir_ / "packed") + " > " + quoted(dir_ / "plain")), 0)
        << command;
    return read_file(dir_ / "plain");
  }

  // Both directions for one codec against one command-line tool.
  void check_interop(kc::codec_id id, const std::string& tool, const std::string& package,
                     const std::vector<std::string>& compress_commands,
                     const std::string& decompress_command) {
    ASSERT_TRUE(have_command(tool)) << "`" << tool << "` is missing: apt-get install " << package;
    const kc::codec& codec = kc::get_codec(id);
    for (const bytes& input : {bytes{}, bytes{'k'}, sample(300'000)}) {
      for (const auto& command : compress_commands) {
        bytes packed = tool_compress(command, input);
        ASSERT_FALSE(packed.empty()) << command;
        bytes ours;
        auto ec = codec.decompress(packed, input.size(), ours);
        ASSERT_FALSE(ec) << command << " output, " << input.size() << " bytes: " << ec.message();
        EXPECT_EQ(ours, input) << command << " output, " << input.size() << " bytes";
      }
      bytes packed;
      ASSERT_FALSE(codec.compress(input, packed));
      EXPECT_EQ(tool_decompress(decompress_command, packed), input)
          << decompress_command << " on our output, " << input.size() << " bytes";
    }
  }

  fs::path dir_;
};

TEST_F(ReferenceTools, Gzip) {
  check_interop(kc::codec_id::gzip, "gzip", "gzip", {"gzip -c", "gzip -1 -c", "gzip -9 -n -c"},
                "gzip -dc");
}

TEST_F(ReferenceTools, Bzip2) {
  check_interop(kc::codec_id::bz2, "bzip2", "bzip2", {"bzip2 -c", "bzip2 -1 -c"}, "bzip2 -dc");
}

TEST_F(ReferenceTools, Xz) {
  // -0 uses a 256 KiB dictionary, the default -6 an 8 MiB one, -e the slow match finder.
  check_interop(kc::codec_id::lzma, "xz", "xz-utils", {"xz -c", "xz -0 -c", "xz -e -c"},
                "xz -dc");
}

TEST_F(ReferenceTools, Zstd) {
  // --check adds the optional content checksum, --no-check omits it; both are valid frames.
  check_interop(kc::codec_id::zstd, "zstd", "zstd",
                {"zstd -q -c", "zstd -q -19 --check -c", "zstd -q -1 --no-check -c"},
                "zstd -q -dc");
}

TEST_F(ReferenceTools, ZlibMatchesPython) {
  // Python's zlib module is the reference the protocol names: zlib.compress(data) at its
  // default level, and zlib.decompress for the other direction.
  ASSERT_TRUE(have_command("python3")) << "`python3` is missing: apt-get install python3";
  const std::string py_compress =
      "python3 -c 'import sys, zlib; "
      "sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))'";
  const std::string py_decompress =
      "python3 -c 'import sys, zlib; "
      "sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))'";
  check_interop(kc::codec_id::zlib, "python3", "python3", {py_compress}, py_decompress);

  // Same library, same level and window: our stream is byte-for-byte Python's.
  bytes input = sample(100'000);
  bytes ours;
  ASSERT_FALSE(kc::get_codec(kc::codec_id::zlib).compress(input, ours));
  EXPECT_EQ(ours, tool_compress(py_compress, input));
}

TEST_F(ReferenceTools, Snappy) {
  // python-snappy's snappy.compress() is a thin wrapper over the snappy C++ library, whose
  // snappy::Compress / snappy::Uncompress are the reference implementation of the raw block
  // format. We always check against the library; python-snappy is checked too when it is
  // installed (python3-snappy), and the test output says which references ran.
  const kc::codec& codec = kc::get_codec(kc::codec_id::snappy);
  for (const bytes& input : {bytes{}, bytes{'k'}, sample(300'000)}) {
    std::string reference;
    snappy::Compress(reinterpret_cast<const char*>(input.data()), input.size(), &reference);
    bytes ours;
    ASSERT_FALSE(codec.decompress(bytes(reference.begin(), reference.end()), input.size(), ours));
    EXPECT_EQ(ours, input);

    bytes packed;
    ASSERT_FALSE(codec.compress(input, packed));
    std::string restored;
    ASSERT_TRUE(snappy::Uncompress(reinterpret_cast<const char*>(packed.data()), packed.size(),
                                   &restored));
    EXPECT_EQ(bytes(restored.begin(), restored.end()), input);
  }

  // python3-snappy is Debian's package, so use Debian's interpreter (another python3 may come
  // first on PATH). run.sh installs it; a missing module fails, naming the package.
  ASSERT_EQ(run("/usr/bin/python3 -c 'import snappy' >/dev/null 2>&1"), 0)
      << "python-snappy is missing: apt-get install python3-snappy";
  check_interop(kc::codec_id::snappy, "/usr/bin/python3", "python3-snappy",
                {"/usr/bin/python3 -c 'import sys, snappy; "
                 "sys.stdout.buffer.write(snappy.compress(sys.stdin.buffer.read()))'"},
                "/usr/bin/python3 -c 'import sys, snappy; "
                "sys.stdout.buffer.write(snappy.decompress(sys.stdin.buffer.read()))'");
}

}  // namespace
