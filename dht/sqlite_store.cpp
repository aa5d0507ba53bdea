#include "kadnet/dht/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <stdexcept>

namespace kadnet::dht {
namespace {

constexpr int schema_version = 1;

// "values" is an SQL keyword, hence the quotes.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS "values" (
  key BLOB PRIMARY KEY,
  version INTEGER NOT NULL,
  value BLOB NOT NULL,
  expires_ms INTEGER NOT NULL,
  owner BLOB,
  sig BLOB,
  original INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS values_by_expiry ON "values"(expires_ms);
CREATE TABLE IF NOT EXISTS contacts (
  id BLOB PRIMARY KEY,
  addresses TEXT NOT NULL,
  rtt_us INTEGER NOT NULL
);
PRAGMA user_version = 1;
)sql";

constexpr const char* value_columns = "key, version, value, expires_ms, owner, sig, original";

// A prepared statement, prepared once and reused (SQLITE_PREPARE_PERSISTENT).
class statement {
 public:
  statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement for its next use when the caller is done with it, whatever the path out.
class use {
 public:
  explicit use(const statement& s) : stmt_(s.get()) {}
  ~use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  use(const use&) = delete;
  use& operator=(const use&) = delete;
  sqlite3_stmt* operator*() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// A zero-length blob bound from a null pointer would become NULL; "" keeps it a blob.
void bind_blob(sqlite3_stmt* s, int index, byte_span bytes) {
  const void* data = bytes.empty() ? static_cast<const void*>("") : bytes.data();
  sqlite3_bind_blob(s, index, data, static_cast<int>(bytes.size()), SQLITE_STATIC);
}

byte_span column_blob(sqlite3_stmt* s, int column) {
  auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, column));
  int size = sqlite3_column_bytes(s, column);  // after column_blob, as SQLite asks
  return data ? byte_span(data, static_cast<std::size_t>(size)) : byte_span{};
}

std::runtime_error open_error(const std::filesystem::path& file, const std::string& what) {
  return std::runtime_error("kadnet: cannot open value store " + file.string() + ": " + what);
}

}  // namespace

std::chrono::milliseconds wall_clock_offset(std::chrono::system_clock::time_point wall_now,
                                            core::time_point now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall_now.time_since_epoch()) -
         std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
}

struct sqlite_store::impl {
  struct statements {
    explicit statements(sqlite3* db)
        : select_held(db, std::string("SELECT ") + value_columns + R"( FROM "values" WHERE key = ?1)"),
          select_live(db, std::string("SELECT ") + value_columns +
                              R"( FROM "values" WHERE key = ?1 AND expires_ms > ?2)"),
          select_all_live(db, std::string("SELECT ") + value_columns +
                                  R"( FROM "values" WHERE expires_ms > ?1 ORDER BY key)"),
          upsert(db, std::string(R"(INSERT OR REPLACE INTO "values" ()") + value_columns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
          refresh(db, R"(UPDATE "values" SET expires_ms = max(expires_ms, ?2),
                         original = original OR ?3 WHERE key = ?1)"),
          delete_expired(db, R"(DELETE FROM "values" WHERE expires_ms <= ?1 RETURNING length(value))"),
          min_expiry(db, R"(SELECT min(expires_ms) FROM "values")"),
          usage(db, R"(SELECT count(*), coalesce(sum(length(value)), 0) FROM "values")"),
          begin(db, "BEGIN IMMEDIATE"),
          commit(db, "COMMIT"),
          rollback(db, "ROLLBACK"),
          delete_contacts(db, "DELETE FROM contacts"),
          insert_contact(db, "INSERT OR REPLACE INTO contacts (id, addresses, rtt_us) VALUES (?1, ?2, ?3)"),
          select_contacts(db, "SELECT id, addresses, rtt_us FROM contacts ORDER BY id"),
          journal_mode(db, "PRAGMA journal_mode") {}
    statement select_held, select_live, select_all_live, upsert, refresh, delete_expired,
        min_expiry, usage, begin, commit, rollback, delete_contacts, insert_contact,
        select_contacts, journal_mode;
  };

  std::filesystem::path file;
  store_limits limits;
  std::chrono::milliseconds offset;
  sqlite3* db = nullptr;
  std::unique_ptr<statements> sql;
  std::size_t values = 0;
  std::size_t bytes = 0;
  std::uint64_t failures = 0;
  std::string last_error;

  ~impl() {
    sql.reset();  // statements before the connection
    sqlite3_close_v2(db);
  }

  void open() {
    // Never SQLITE_OPEN_CREATE's parent directories: a missing data dir is a configuration error.
    int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) throw open_error(file, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_extended_result_codes(db, 1);
    // Another handle on the same file (a node being replaced in this process) may hold a lock
    // for a moment: wait for it rather than fail at once.
    sqlite3_busy_timeout(db, 2000);
    // The first statement reads the header: a file that is not a database fails here.
    std::string mode;
    try {
      statement wal(db, "PRAGMA journal_mode = WAL");
      use u(wal);
      if (sqlite3_step(*u) == SQLITE_ROW)
        mode = reinterpret_cast<const char*>(sqlite3_column_text(*u, 0));
      else
        throw std::runtime_error(sqlite3_errmsg(db));
    } catch (const std::runtime_error& e) {
      throw open_error(file, e.what());
    }
    if (mode != "wal") throw open_error(file, "WAL journal mode refused (got \"" + mode + "\")");
    exec("PRAGMA synchronous = NORMAL");
    int version = 0;
    {
      statement v(db, "PRAGMA user_version");
      use u(v);
      if (sqlite3_step(*u) != SQLITE_ROW) throw open_error(file, sqlite3_errmsg(db));
      version = sqlite3_column_int(*u, 0);
    }
    if (version > schema_version)
      throw open_error(file, "schema version " + std::to_string(version) +
                                 " is newer than this kadnet's " + std::to_string(schema_version));
    exec(schema_sql);
    try {
      sql = std::make_unique<statements>(db);
    } catch (const std::runtime_error& e) {
      throw open_error(file, e.what());
    }
    use u(sql->usage);
    if (sqlite3_step(*u) != SQLITE_ROW) throw open_error(file, sqlite3_errmsg(db));
    values = static_cast<std::size_t>(sqlite3_column_int64(*u, 0));
    bytes = static_cast<std::size_t>(sqlite3_column_int64(*u, 1));
  }

  void exec(const char* text) {
    char* message = nullptr;
    if (sqlite3_exec(db, text, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string what = message ? message : sqlite3_errmsg(db);
      sqlite3_free(message);
      throw open_error(file, what);
    }
  }

  void fail(std::string_view what) {
    ++failures;
    last_error = std::string(what) + ": " + sqlite3_errmsg(db);
  }

  // Expiries go to the database rounded up and `now` rounded down, so that "expires_ms <= now_ms"
  // is exactly "expires <= now" for the time_point read back.
  std::int64_t expiry_ms(core::time_point t) const {
    return std::chrono::ceil<std::chrono::milliseconds>(t.time_since_epoch()).count() +
           offset.count();
  }
  std::int64_t now_ms(core::time_point t) const {
    return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count() +
           offset.count();
  }
  core::time_point from_ms(std::int64_t ms) const {
    return core::time_point(std::chrono::duration_cast<core::time_point::duration>(
        std::chrono::milliseconds(ms) - offset));
  }

  // One row of value_columns; nullopt (counted) for a row this version cannot have written.
  std::optional<stored_value> read_row(sqlite3_stmt* s) {
    stored_value v;
    auto key = core::node_id::from_bytes(column_blob(s, 0));
    if (!key) return bad_row();
    v.key = *key;
    v.version = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    byte_span value = column_blob(s, 2);
    v.value.assign(value.begin(), value.end());
    v.expires = from_ms(sqlite3_column_int64(s, 3));
    if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
      auto owner = core::node_id::from_bytes(column_blob(s, 4));
      if (!owner) return bad_row();
      v.owner = *owner;
    }
    if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
      byte_span sig = column_blob(s, 5);
      if (sig.size() != core::signature_size) return bad_row();
      v.sig.emplace();
      std::copy(sig.begin(), sig.end(), v.sig->begin());
    }
    v.original = sqlite3_column_int(s, 6) != 0;
    return v;
  }
  std::optional<stored_value> bad_row() {
    ++failures;
    last_error = "malformed row in " + file.string();
    return std::nullopt;
  }

  // What is held for `key`, expired or not. False on a read failure.
  bool held(const core::node_id& key, std::optional<stored_value>& out) {
    out.reset();
    use u(sql->select_held);
    bind_blob(*u, 1, key.span());
    int rc = sqlite3_step(*u);
    if (rc == SQLITE_ROW) {
      out = read_row(*u);
      return out.has_value();
    }
    if (rc == SQLITE_DONE) return true;
    fail("reading a value");
    return false;
  }

  bool write(const stored_value& v) {
    use u(sql->upsert);
    std::uint64_t version = v.version;
    bind_blob(*u, 1, v.key.span());
    sqlite3_bind_int64(*u, 2, static_cast<sqlite3_int64>(version));  // read back bit for bit
    bind_blob(*u, 3, v.value);
    sqlite3_bind_int64(*u, 4, expiry_ms(v.expires));
    if (v.owner) bind_blob(*u, 5, v.owner->span());
    if (v.sig) bind_blob(*u, 6, *v.sig);
    sqlite3_bind_int(*u, 7, v.original ? 1 : 0);
    if (sqlite3_step(*u) == SQLITE_DONE) return true;
    fail("writing a value");
    return false;
  }

  bool step_done(const statement& s) {
    use u(s);
    return sqlite3_step(*u) == SQLITE_DONE;
  }
};

sqlite_store::sqlite_store(const std::filesystem::path& dir, store_limits limits,
                           std::chrono::milliseconds wall_offset)
    : impl_(std::make_unique<impl>()) {
  impl_->file = dir / file_name;
  impl_->limits = limits;
  impl_->offset = wall_offset;
  impl_->open();
}

sqlite_store::~sqlite_store() = default;

put_result sqlite_store::put(stored_value v, core::time_point now) {
  impl& d = *impl_;
  v.expires = clamp_expiry(v.expires, now, d.limits);
  std::optional<stored_value> held;
  if (!d.held(v.key, held)) return put_result::storage_failed;
  put_result r = check_put(held ? &*held : nullptr, v, d.limits, {d.values, d.bytes}, now);
  if (r == put_result::quota_full && expire(now) > 0) {
    if (!d.held(v.key, held)) return put_result::storage_failed;
    r = check_put(held ? &*held : nullptr, v, d.limits, {d.values, d.bytes}, now);
  }
  if (r == put_result::refreshed) {
    use u(d.sql->refresh);
    bind_blob(*u, 1, v.key.span());
    sqlite3_bind_int64(*u, 2, d.expiry_ms(v.expires));
    sqlite3_bind_int(*u, 3, v.original ? 1 : 0);
    if (sqlite3_step(*u) != SQLITE_DONE) {
      d.fail("refreshing a value");
      return put_result::storage_failed;
    }
    return r;
  }
  if (r != put_result::stored) return r;
  if (!d.write(v)) return put_result::storage_failed;
  if (held) {
    d.bytes -= held->value.size();
  } else {
    ++d.values;
  }
  d.bytes += v.value.size();
  return r;
}

std::optional<stored_value> sqlite_store::get(const core::node_id& key,
                                              core::time_point now) const {
  impl& d = *impl_;
  use u(d.sql->select_live);
  bind_blob(*u, 1, key.span());
  sqlite3_bind_int64(*u, 2, d.now_ms(now));
  int rc = sqlite3_step(*u);
  if (rc == SQLITE_ROW) return d.read_row(*u);
  if (rc != SQLITE_DONE) d.fail("reading a value");
  return std::nullopt;
}

std::size_t sqlite_store::expire(core::time_point now) {
  impl& d = *impl_;
  use u(d.sql->delete_expired);
  sqlite3_bind_int64(*u, 1, d.now_ms(now));
  // One statement, so all or nothing; RETURNING hands back each removed value's size.
  std::size_t removed = 0;
  std::size_t removed_bytes = 0;
  int rc;
  while ((rc = sqlite3_step(*u)) == SQLITE_ROW) {
    ++removed;
    removed_bytes += static_cast<std::size_t>(sqlite3_column_int64(*u, 0));
  }
  if (rc != SQLITE_DONE) {
    d.fail("expiring values");
    return 0;
  }
  d.values -= std::min(removed, d.values);
  d.bytes -= std::min(removed_bytes, d.bytes);
  return removed;
}

std::vector<stored_value> sqlite_store::all(core::time_point now) const {
  impl& d = *impl_;
  std::vector<stored_value> out;
  use u(d.sql->select_all_live);
  sqlite3_bind_int64(*u, 1, d.now_ms(now));
  int rc;
  while ((rc = sqlite3_step(*u)) == SQLITE_ROW)
    if (auto v = d.read_row(*u)) out.push_back(std::move(*v));
  if (rc != SQLITE_DONE) d.fail("listing values");
  return out;
}

std::optional<core::time_point> sqlite_store::next_expiry() const {
  impl& d = *impl_;
  use u(d.sql->min_expiry);
  if (sqlite3_step(*u) != SQLITE_ROW) {
    d.fail("reading the next expiry");
    return std::nullopt;
  }
  if (sqlite3_column_type(*u, 0) == SQLITE_NULL) return std::nullopt;
  return d.from_ms(sqlite3_column_int64(*u, 0));
}

std::size_t sqlite_store::size() const { return impl_->values; }
std::size_t sqlite_store::bytes() const { return impl_->bytes; }

bool sqlite_store::save_contacts(const std::vector<contact>& contacts) {
  impl& d = *impl_;
  if (!d.step_done(d.sql->begin)) {
    d.fail("saving contacts");
    return false;
  }
  bool ok = d.step_done(d.sql->delete_contacts);
  for (std::size_t i = 0; ok && i < contacts.size(); ++i) {
    const contact& c = contacts[i];
    std::string addresses;
    for (const auto& a : c.addresses) {
      if (!addresses.empty()) addresses += '\n';
      addresses += a;
    }
    use u(d.sql->insert_contact);
    bind_blob(*u, 1, c.id.span());
    sqlite3_bind_text(*u, 2, addresses.data(), static_cast<int>(addresses.size()), SQLITE_STATIC);
    sqlite3_bind_int64(*u, 3, c.rtt.count());
    ok = sqlite3_step(*u) == SQLITE_DONE;
  }
  if (ok && d.step_done(d.sql->commit)) return true;
  d.fail("saving contacts");
  d.step_done(d.sql->rollback);
  return false;
}

std::vector<contact> sqlite_store::load_contacts() const {
  impl& d = *impl_;
  std::vector<contact> out;
  use u(d.sql->select_contacts);
  int rc;
  while ((rc = sqlite3_step(*u)) == SQLITE_ROW) {
    auto id = core::node_id::from_bytes(column_blob(*u, 0));
    if (!id) {
      d.bad_row();
      continue;
    }
    contact c;
    c.id = *id;
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(*u, 1));
    std::string_view rest = text ? std::string_view(text, sqlite3_column_bytes(*u, 1)) : "";
    while (!rest.empty()) {
      auto end = rest.find('\n');
      auto line = rest.substr(0, end);
      if (!line.empty()) c.addresses.emplace_back(line);
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    }
    c.rtt = std::chrono::microseconds(sqlite3_column_int64(*u, 2));
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) d.fail("loading contacts");
  return out;
}

std::string sqlite_store::journal_mode() const {
  use u(impl_->sql->journal_mode);
  if (sqlite3_step(*u) != SQLITE_ROW) return {};
  return reinterpret_cast<const char*>(sqlite3_column_text(*u, 0));
}

const std::filesystem::path& sqlite_store::file() const { return impl_->file; }
const store_limits& sqlite_store::limits() const { return impl_->limits; }
std::uint64_t sqlite_store::failures() const { return impl_->failures; }
const std::string& sqlite_store::last_error() const { return impl_->last_error; }

}  // namespace kadnet::dht
