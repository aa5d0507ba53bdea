#include "kadnet/core/identity.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace kadnet::core {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class IdentityFile : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kadnet-identity-test-" + std::to_string(::getpid()) + "-" + info->name() + "-" +
            std::to_string(counter++));
    fs::remove_all(dir_);
    ASSERT_TRUE(fs::create_directory(dir_));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `content` to a file in the test directory with the given mode.
  fs::path write_file(const std::string& name, const std::string& content,
                      fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
    fs::path p = dir_ / name;
    {
      std::ofstream out(p, std::ios::binary);
      out << content;
    }
    fs::permissions(p, mode, fs::perm_options::replace);
    return p;
  }

  static ::mode_t file_mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  // Runs `f`, expects std::runtime_error, and returns its message.
  template <typename F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no std::runtime_error thrown";
    return {};
  }

  fs::path dir_;
};

std::array<std::uint8_t, 32> seed_of(std::uint8_t n) {
  std::array<std::uint8_t, 32> seed;
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(n + i);
  return seed;
}

TEST_F(IdentityFile, SaveCreatesFileWithMode0600) {
  fs::path p = dir_ / "node.key";
  identity::generate().save(p);
  ASSERT_TRUE(fs::exists(p));
  EXPECT_EQ(file_mode(p), 0600u);
}

TEST_F(IdentityFile, SaveWritesTheDocumentedFormat) {
  auto id = identity::from_seed(seed_of(1));
  fs::path p = dir_ / "node.key";
  id.save(p);
  std::ifstream in(p);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "kadnet-ed25519-seed-v1 " + to_hex(id.seed()) + "\n");
}

TEST_F(IdentityFile, LoadRoundTripGivesSameIdAndSeed) {
  auto original = identity::generate();
  fs::path p = dir_ / "node.key";
  original.save(p);
  auto loaded = identity::load(p);
  EXPECT_EQ(loaded.id(), original.id());
  EXPECT_EQ(loaded.seed(), original.seed());
  // The loaded key signs like the original.
  auto msg = as_bytes("round trip");
  EXPECT_EQ(loaded.sign(msg), original.sign(msg));
}

TEST_F(IdentityFile, LoadRefusesGroupOrWorldReadableFileNamingIt) {
  fs::path p = dir_ / "node.key";
  identity::generate().save(p);
  ::chmod(p.c_str(), 0644);
  std::string what = error_of([&] { identity::load(p); });
  EXPECT_NE(what.find(p.string()), std::string::npos) << what;
}

TEST_F(IdentityFile, LoadRefusesAnyGroupOrOtherBit) {
  fs::path p = dir_ / "node.key";
  identity::generate().save(p);
  for (::mode_t mode : {0640, 0604, 0620, 0602, 0610, 0601, 0660, 0606}) {
    ::chmod(p.c_str(), mode);
    std::string what = error_of([&] { identity::load(p); });
    EXPECT_NE(what.find(p.string()), std::string::npos) << std::oct << mode << ": " << what;
  }
  ::chmod(p.c_str(), 0400);  // owner read only is fine
  EXPECT_NO_THROW(identity::load(p));
}

TEST_F(IdentityFile, LoadOfMissingFileThrowsNamingIt) {
  fs::path p = dir_ / "absent.key";
  std::string what = error_of([&] { identity::load(p); });
  EXPECT_NE(what.find(p.string()), std::string::npos) << what;
  EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
}

TEST_F(IdentityFile, SaveIntoAMissingDirectorySaysWhy) {
  fs::path p = dir_ / "no-such-dir" / "node.key";
  std::string what = error_of([&] { identity::generate().save(p); });
  EXPECT_NE(what.find(p.string()), std::string::npos) << what;
  EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
  EXPECT_EQ(what.find("already exist"), std::string::npos) << what;
}

TEST_F(IdentityFile, LoadOfMalformedFileThrowsNamingIt) {
  const std::string good_hex = to_hex(seed_of(9));
  const struct {
    const char* name;
    std::string content;
  } cases[] = {
      {"empty", ""},
      {"tag-only", "kadnet-ed25519-seed-v1\n"},
      {"wrong-tag", "kadnet-ed25519-seed-v2 " + good_hex + "\n"},
      {"no-tag", good_hex + "\n"},
      {"short-seed", "kadnet-ed25519-seed-v1 " + good_hex.substr(0, 62) + "\n"},
      {"long-seed", "kadnet-ed25519-seed-v1 " + good_hex + "00\n"},
      {"odd-hex", "kadnet-ed25519-seed-v1 " + good_hex.substr(0, 63) + "\n"},
      {"non-hex", "kadnet-ed25519-seed-v1 " + good_hex.substr(0, 62) + "zz\n"},
  };
  for (const auto& c : cases) {
    fs::path p = write_file(std::string(c.name) + ".key", c.content);
    std::string what = error_of([&] { identity::load(p); });
    EXPECT_NE(what.find(p.string()), std::string::npos) << c.name << ": " << what;
  }
}

TEST_F(IdentityFile, LoadAcceptsAHandWrittenFile) {
  auto expected = identity::from_seed(seed_of(3));
  fs::path p = write_file("hand.key", "kadnet-ed25519-seed-v1 " + to_hex(seed_of(3)) + "\n");
  EXPECT_EQ(identity::load(p).id(), expected.id());
}

TEST_F(IdentityFile, SaveRefusesToOverwrite) {
  fs::path p = dir_ / "node.key";
  auto first = identity::generate();
  first.save(p);
  auto second = identity::generate();
  std::string what = error_of([&] { second.save(p); });
  EXPECT_NE(what.find(p.string()), std::string::npos) << what;
  EXPECT_NE(what.find(std::strerror(EEXIST)), std::string::npos) << what;
  // The file still holds the first identity.
  EXPECT_EQ(identity::load(p).id(), first.id());
}

TEST_F(IdentityFile, SaveRefusesToOverwriteAnUnrelatedFile) {
  fs::path p = write_file("other.txt", "keep me\n");
  EXPECT_THROW(identity::generate().save(p), std::runtime_error);
  std::ifstream in(p);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "keep me\n");
}

TEST_F(IdentityFile, LoadOrCreateCreatesThenReloadsTheSameId) {
  fs::path p = dir_ / "node.key";
  ASSERT_FALSE(fs::exists(p));
  auto created = identity::load_or_create(p);
  ASSERT_TRUE(fs::exists(p));
  EXPECT_EQ(file_mode(p), 0600u);
  auto reloaded = identity::load_or_create(p);
  EXPECT_EQ(reloaded.id(), created.id());
  EXPECT_EQ(identity::load(p).id(), created.id());
}

TEST_F(IdentityFile, LoadOrCreateStillRefusesAReadableFile) {
  fs::path p = dir_ / "node.key";
  identity::load_or_create(p);
  ::chmod(p.c_str(), 0644);
  std::string what = error_of([&] { identity::load_or_create(p); });
  EXPECT_NE(what.find(p.string()), std::string::npos) << what;
}

TEST(Identity, GenerateGivesDistinctIds) {
  EXPECT_NE(identity::generate().id(), identity::generate().id());
}

TEST(Identity, FromSeedIsDeterministic) {
  auto a = identity::from_seed(seed_of(7));
  auto b = identity::from_seed(seed_of(7));
  auto c = identity::from_seed(seed_of(8));
  EXPECT_EQ(a.id(), b.id());
  EXPECT_EQ(a.seed(), seed_of(7));
  EXPECT_NE(a.id(), c.id());
  auto msg = as_bytes("same message");
  EXPECT_EQ(a.sign(msg), b.sign(msg));  // Ed25519 signatures are deterministic
}

TEST(Identity, FromSeedMatchesRfc8032TestVector1) {
  // RFC 8032, section 7.1, TEST 1 (empty message).
  byte_vector raw;
  ASSERT_TRUE(from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", raw));
  std::array<std::uint8_t, 32> seed;
  std::copy(raw.begin(), raw.end(), seed.begin());
  auto id = identity::from_seed(seed);
  EXPECT_EQ(id.id().to_hex(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = id.sign(byte_span());
  EXPECT_EQ(to_hex(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
            "39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(identity::verify(id.id(), byte_span(), sig));
}

TEST(Identity, SignThenVerify) {
  auto id = identity::from_seed(seed_of(11));
  std::string text = "kadnet signed message";
  auto sig = id.sign(as_bytes(text));
  EXPECT_TRUE(identity::verify(id.id(), as_bytes(text), sig));
}

TEST(Identity, VerifyFailsOnAlteredMessage) {
  auto id = identity::from_seed(seed_of(12));
  std::string text = "kadnet signed message";
  auto sig = id.sign(as_bytes(text));
  for (std::size_t i = 0; i < text.size(); ++i) {
    std::string altered = text;
    altered[i] ^= 0x01;
    EXPECT_FALSE(identity::verify(id.id(), as_bytes(altered), sig)) << "byte " << i;
  }
  EXPECT_FALSE(identity::verify(id.id(), as_bytes(text + "!"), sig));
  EXPECT_FALSE(identity::verify(id.id(), as_bytes(text.substr(1)), sig));
}

TEST(Identity, VerifyFailsOnAlteredSignature) {
  auto id = identity::from_seed(seed_of(13));
  auto msg = as_bytes("kadnet signed message");
  const auto sig = id.sign(msg);
  for (std::size_t i = 0; i < sig.size(); ++i) {
    auto altered = sig;
    altered[i] ^= 0x01;
    EXPECT_FALSE(identity::verify(id.id(), msg, altered)) << "byte " << i;
  }
  EXPECT_FALSE(identity::verify(id.id(), msg, signature{}));
}

TEST(Identity, VerifyFailsWithWrongKey) {
  auto signer = identity::from_seed(seed_of(14));
  auto other = identity::from_seed(seed_of(15));
  auto msg = as_bytes("kadnet signed message");
  auto sig = signer.sign(msg);
  EXPECT_FALSE(identity::verify(other.id(), msg, sig));
  EXPECT_FALSE(identity::verify(node_id(), msg, sig));
  EXPECT_TRUE(identity::verify(signer.id(), msg, sig));
}

}  // namespace
}  // namespace kadnet::core
