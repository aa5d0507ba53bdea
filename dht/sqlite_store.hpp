#pragma once
// The persistent value store: SQLite (Debian's libsqlite3) in WAL mode, one file
// `<dir>/values.sqlite3`, so that a node restarted with --data-dir keeps the values it held and a
// snapshot of its routing table for a fast rejoin. Rules and contract: dht/value_store.hpp and
// dht/store_rules.hpp (the same as memory_store's, checked by the same test suite).
//
// Schema (PRAGMA user_version = 1):
//   "values"(key BLOB PRIMARY KEY, version INTEGER, value BLOB, expires_ms INTEGER,
//            owner BLOB NULL, sig BLOB NULL, original INTEGER), indexed on expires_ms
//   contacts(id BLOB PRIMARY KEY, addresses TEXT (newline-joined URIs), rtt_us INTEGER)
// with journal_mode=WAL and synchronous=NORMAL: a crash loses no committed write, a power cut at
// most the last few (the DHT republishes values anyway).
//
// Time. expires_ms is the expiry as milliseconds since the epoch of the time_points passed in,
// plus `wall_offset`, rounded up (a value never expires early; one whose expiry is not on a
// whole millisecond may live up to 1 ms longer). For values to expire at the right time after a
// restart, that epoch must survive restarts: core::time_point is steady_clock's, whose epoch is
// usually the boot, so the I/O layer that reads the clocks passes
//   wall_clock_offset(std::chrono::system_clock::now(), std::chrono::steady_clock::now())
// and expiries are then stored as Unix time. With the default offset of 0 the caller's own
// epoch is stored as it is (right for tests and for a clock that is already system_clock-based).
//
// Errors. Opening or creating the database (missing or unwritable directory, a file that is not a
// database or is corrupted, a schema from a newer kadnet, WAL refused) throws std::runtime_error
// naming the file: it is bad configuration at start-up. After that nothing throws: a failed write
// is put_result::storage_failed or save_contacts() == false, a failed read is "nothing", an
// unreadable row is skipped; each is counted in failures() with the message in last_error().
// Not thread-safe: one node's strand uses it, as every core.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kadnet/dht/contact.hpp"
#include "kadnet/dht/store_rules.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

// What to pass as sqlite_store's wall_offset: wall time minus steady time, read together.
std::chrono::milliseconds wall_clock_offset(std::chrono::system_clock::time_point wall_now,
                                            core::time_point now);

class sqlite_store final : public value_store {
 public:
  static constexpr std::string_view file_name = "values.sqlite3";

  // Opens `<dir>/values.sqlite3`, creating the file and its tables if needed (never `dir`).
  // Throws std::runtime_error naming the file on failure.
  explicit sqlite_store(const std::filesystem::path& dir, store_limits limits = {},
                        std::chrono::milliseconds wall_offset = std::chrono::milliseconds{0});
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  put_result put(stored_value v, core::time_point now) override;
  std::optional<stored_value> get(const core::node_id& key, core::time_point now) const override;
  std::size_t expire(core::time_point now) override;
  std::vector<stored_value> all(core::time_point now) const override;
  std::optional<core::time_point> next_expiry() const override;
  std::size_t size() const override;
  std::size_t bytes() const override;

  // The routing-table snapshot: save replaces the previous one in one transaction (false, and
  // the old snapshot kept, on failure). Ids, addresses and RTTs are kept; last_seen and failures
  // are not (a restarted node has seen no one yet).
  bool save_contacts(const std::vector<contact>& contacts);
  std::vector<contact> load_contacts() const;

  // "wal" once open; for tests and diagnostics.
  std::string journal_mode() const;
  const std::filesystem::path& file() const;
  const store_limits& limits() const;
  std::uint64_t failures() const;
  const std::string& last_error() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kadnet::dht
