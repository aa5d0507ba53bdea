// What only the SQLite backend promises: values and the routing-table snapshot survive a restart,
// WAL mode, and start-up errors that name the file. The rules are tested in value_store_test.cpp.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/sqlite_store.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::time_point;

const time_point t0 = time_point{} + 1000h;

core::node_id key(std::uint8_t n) {
  core::node_id::bytes_type b{};
  b.fill(n);
  return core::node_id(b);
}

stored_value value(std::uint8_t k, std::uint64_t version, std::string_view text,
                   const core::identity* owner = nullptr, std::chrono::seconds ttl = 60s,
                   time_point now = t0) {
  core::wire::store s;
  s.key = key(k);
  s.version = version;
  s.ttl_seconds = static_cast<std::uint32_t>(ttl.count());
  auto bytes = as_bytes(text);
  s.value.assign(bytes.begin(), bytes.end());
  if (owner) s.owner = core::wire::store_owner{owner->id(), owner->sign(core::wire::store_signed_bytes(s))};
  return from_store(s, now);
}

class SqliteStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "kadnet-sqlite-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add);
    std::filesystem::remove_all(dir_);
  }
  // Expects sqlite_store(dir) to throw a message naming `<dir>/values.sqlite3`.
  static void expect_open_fails(const std::filesystem::path& dir) {
    std::string file = (dir / "values.sqlite3").string();
    try {
      sqlite_store store(dir);
      ADD_FAILURE() << "opened " << file;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteStore, ValuesSurviveARestart) {
  auto alice = testing::fixed_identity(1);
  auto signed_value = value(1, 4, "alice's", &alice);
  auto mine = value(2, 1, "mine");
  mine.original = true;
  auto empty = value(3, 0, "");
  {
    sqlite_store store(dir_);
    ASSERT_EQ(store.put(signed_value, t0), put_result::stored);
    ASSERT_EQ(store.put(mine, t0), put_result::stored);
    ASSERT_EQ(store.put(empty, t0), put_result::stored);
    ASSERT_EQ(store.put(value(4, 1, "brief", nullptr, 1s), t0), put_result::stored);
  }
  sqlite_store store(dir_);
  EXPECT_EQ(store.size(), 4u);
  EXPECT_EQ(store.bytes(), 7u + 4u + 0u + 5u);
  EXPECT_EQ(store.get(key(1), t0), signed_value);
  EXPECT_EQ(store.get(key(2), t0), mine);
  EXPECT_EQ(store.get(key(3), t0), empty);
  EXPECT_EQ(store.next_expiry(), t0 + 1s);
  EXPECT_EQ(store.all(t0 + 1s).size(), 3u);
  // The rules hold across the restart: the owner and the version were kept.
  auto bob = testing::fixed_identity(2);
  EXPECT_EQ(store.put(value(1, 9, "bob's", &bob), t0), put_result::owner_mismatch);
  EXPECT_EQ(store.put(value(1, 3, "old", &alice), t0), put_result::version_conflict);
  EXPECT_EQ(store.expire(t0 + 1s), 1u);
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.failures(), 0u);
}

TEST_F(SqliteStore, ExpiryFollowsWallTimeAcrossAReboot) {
  // Before: steady time t0 at wall time W. After the reboot the steady clock restarted near
  // zero, 30 s of wall time later.
  const auto wall = std::chrono::system_clock::time_point{} + 20000h;
  {
    sqlite_store store(dir_, {}, wall_clock_offset(wall, t0));
    ASSERT_EQ(store.put(value(1, 1, "v", nullptr, 100s), t0), put_result::stored);
  }
  const time_point after = time_point{} + 5s;
  sqlite_store store(dir_, {}, wall_clock_offset(wall + 30s, after));
  auto got = store.get(key(1), after);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->expires, after + 70s);
  EXPECT_FALSE(store.get(key(1), after + 70s));
}

TEST_F(SqliteStore, ContactsSurviveARestart) {
  std::vector<contact> contacts(3);
  contacts[0].id = key(9);
  contacts[0].addresses = {"tcp://203.0.113.7:4000", "ws://[2001:db8::1]:4001"};
  contacts[0].rtt = 1500us;
  contacts[0].failures = 2;  // not part of the snapshot
  contacts[1].id = key(5);   // dials out only
  contacts[2].id = key(7);
  contacts[2].addresses = {"udp://198.51.100.2:4000"};
  {
    sqlite_store store(dir_);
    EXPECT_TRUE(store.load_contacts().empty());
    ASSERT_TRUE(store.save_contacts({contacts[2]}));
    ASSERT_TRUE(store.save_contacts(contacts));  // replaces the previous snapshot
  }
  sqlite_store store(dir_);
  auto loaded = store.load_contacts();
  ASSERT_EQ(loaded.size(), 3u);
  std::sort(contacts.begin(), contacts.end(),
            [](const contact& a, const contact& b) { return a.id < b.id; });
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(loaded[i].id, contacts[i].id);
    EXPECT_EQ(loaded[i].addresses, contacts[i].addresses);
    EXPECT_EQ(loaded[i].rtt, contacts[i].rtt);
    EXPECT_EQ(loaded[i].failures, 0);
  }
  ASSERT_TRUE(store.save_contacts({}));
  EXPECT_TRUE(store.load_contacts().empty());
}

TEST_F(SqliteStore, WalModeIsOn) {
  sqlite_store store(dir_);
  EXPECT_EQ(store.journal_mode(), "wal");
  EXPECT_EQ(store.file(), dir_ / "values.sqlite3");
  ASSERT_EQ(store.put(value(1, 1, "v"), t0), put_result::stored);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "values.sqlite3-wal"));
}

TEST_F(SqliteStore, MissingDirectoryThrowsNamingTheFile) {
  expect_open_fails(dir_ / "no" / "such" / "dir");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "no"));  // the store creates no directories
}

TEST_F(SqliteStore, ParentThatIsAFileThrowsNamingTheFile) {
  std::ofstream(dir_ / "plain") << "not a directory";
  expect_open_fails(dir_ / "plain");
}

TEST_F(SqliteStore, UnusableDirectoryThrowsNamingTheFile) {
  // A data directory that is a regular file: no one can create a database inside it, root
  // included (directory permissions would not stop root, who runs CI).
  auto not_a_dir = dir_ / "plain-file";
  std::ofstream(not_a_dir) << "x";
  expect_open_fails(not_a_dir);
}

TEST_F(SqliteStore, CorruptedFileThrowsNamingIt) {
  {
    std::ofstream out(dir_ / "values.sqlite3", std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not an SQLite database ";
  }
  expect_open_fails(dir_);
}

TEST_F(SqliteStore, TruncatedDatabaseThrowsNamingIt) {
  {
    sqlite_store store(dir_);
    ASSERT_EQ(store.put(value(1, 1, "v"), t0), put_result::stored);
  }
  // A valid header over a clobbered schema page.
  std::filesystem::resize_file(dir_ / "values.sqlite3", 100);
  std::filesystem::remove(dir_ / "values.sqlite3-wal");
  std::filesystem::remove(dir_ / "values.sqlite3-shm");
  {
    std::ofstream out(dir_ / "values.sqlite3", std::ios::binary | std::ios::app);
    out << std::string(4000, '\x5a');
  }
  expect_open_fails(dir_);
}

}  // namespace
}  // namespace kadnet::dht
