/* SPDX-License-Identifier: MIT */

/*
 * The device store on SQLite. See store.h for the contract; the decisions worth knowing:
 *
 * Durability. The connection runs in WAL mode with synchronous=NORMAL, where a commit is
 * appended to the WAL but not synced. PROTOCOL.md §6 needs a pending vault on disk before M4
 * leaves, while a lost M5 commit is recovered by the protocol. SQLite refuses to change
 * synchronous inside a transaction, so a durable commit syncs the WAL file itself after
 * COMMIT, which is exactly the extra sync synchronous=FULL performs in WAL mode. A batch
 * turns the writes of many handshakes into one transaction and one sync.
 *
 * Compare-and-set. Every update carries the epoch it expects in its WHERE clause and is a
 * single statement, so a concurrent writer (another session, another process) can never make
 * two sessions commit from the same generation; a probe after a no-op update only chooses
 * the error code. It also carries the enrollment token the session read at M1: a device
 * revoked and enrolled again starts over at epoch 0, and a session begun with the old vault
 * must not write into the new enrollment. Epochs are u64 stored as the int64 bit pattern: SQL never does arithmetic
 * on them (epoch + 1 would overflow into a REAL), C does.
 *
 * Hygiene. Plaintext vaults never reach SQLite: they are sealed (store-crypto.c) into a
 * scratch buffer, or by the caller (store_seal_next()), and opened straight from SQLite's
 * column memory into the caller's buffer. A commit deletes the old generation's row and
 * secure_delete overwrites the freed pages, so old vault generations do not linger in the
 * file; trusted_schema=OFF and the defensive flag limit what a tampered database file can do.
 *
 * Layout (schema 6). Each generation is a row of the vault table, so that a handshake writes
 * the one generation that changes: M3 the new pending one, M5 the device row and the removal
 * of the old one. See SCHEMA_6_VAULT_SQL.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "cleanup.h"
#include "crypto.h"
#include "profile.h"
#include "aggregate.h"
#include "store.h"
#include "store-crypto.h"
#include "text.h"
#include "vault.h"

/* A busy database stalls the event loop, so wait for an admin command briefly only. */
#define STORE_BUSY_TIMEOUT_MS   2000
#define STORE_ERROR_MAX         256
#define STORE_PEER_MAX          128     /* "[v6 address%scope]:port" fits */
#define STORE_OUTCOME_MAX       32

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/*
 * Schema 3, idempotent so that it also upgrades: failed handshakes of peers that never proved
 * a device are counted in memory and written as one row per outcome and interval
 * (audit_summary), never a row per connection; both audit tables are pruned by time; decoys
 * follow the shapes of the active devices, counted through device_shape without a table scan.
 */
#define SCHEMA_3_SQL \
        "CREATE TABLE IF NOT EXISTS audit_summary (" \
        " id INTEGER PRIMARY KEY," \
        " time INTEGER NOT NULL," \
        " outcome TEXT NOT NULL," \
        " count INTEGER NOT NULL" \
        ");" \
        "CREATE INDEX IF NOT EXISTS audit_time ON audit (time);" \
        "CREATE INDEX IF NOT EXISTS audit_summary_time ON audit_summary (time);" \
        "CREATE INDEX IF NOT EXISTS device_shape ON device (status, profile, n, m, p);"

/*
 * Schema 4: each device's key share mode (protocol 1.1 §10), SV_KEX_NONE or SV_KEX_X25519, the
 * latter with the hardened profile only. Added by ALTER TABLE (at the end of the row) in an
 * older database.
 */
#define SCHEMA_KEX_COLUMN \
        " kex INTEGER NOT NULL DEFAULT " STRINGIFY(SV_KEX_NONE) \
        " CHECK (kex IN (" STRINGIFY(SV_KEX_NONE) ", " STRINGIFY(SV_KEX_X25519) ")" \
        " AND (kex = " STRINGIFY(SV_KEX_NONE) " OR profile = " STRINGIFY(SV_PROFILE_HARDENED) "))"

/*
 * Schema 5, idempotent like schema 3: the running aggregates of the built-in data handler
 * (aggregate.h), one row per NAME over all devices. count is a u64 bit pattern like epoch.
 */
#define SCHEMA_5_SQL \
        "CREATE TABLE IF NOT EXISTS aggregate (" \
        " name TEXT PRIMARY KEY NOT NULL," \
        " count INTEGER NOT NULL," \
        " sum REAL NOT NULL," \
        " min REAL NOT NULL," \
        " max REAL NOT NULL" \
        ");"

/*
 * Schema 6: the sealed vault generations in their own table, a row each, so that a write
 * touches only the generation it changes and never the device row's other blob (schema 5
 * and earlier kept both in the device row, and SQLite rewrote the whole record, both blobs
 * and their overflow pages, at every update). A device has at most two generations, the
 * committed one (its epoch) and the pending one (epoch + 1): they live in the slots
 * num * 2 + (generation & 1) of the device's num, a rowid alias, so that every vault row is
 * found by one b-tree descent of a rowid table and no index is written with it. Rows store
 * their generation and are checked against the device's epoch when read.
 */
#define DEVICE_NUM_MAX          "4611686018427387903"   /* 2^62 - 1: num * 2 + 1 is an integer */

/* The device table's CHECKs are the protocol's bounds (proto.h), spelled as the text they always
 * were; params_valid() applies the profile table itself to every row read. */
#define DEVICE_TABLE_SQL(name) \
        "CREATE TABLE " name " (" \
        " num INTEGER PRIMARY KEY CHECK (num BETWEEN 1 AND " DEVICE_NUM_MAX ")," /* schema 6 */ \
        " id TEXT UNIQUE NOT NULL," \
        " status TEXT NOT NULL CHECK (status IN ('active', 'revoked'))," \
        " profile INTEGER NOT NULL CHECK (profile IN (" STRINGIFY(SV_PROFILE_HARDENED) ", " \
                                                      STRINGIFY(SV_PROFILE_PAPER) "))," \
        " n INTEGER NOT NULL CHECK (n BETWEEN " STRINGIFY(SV_N_MIN) " AND " STRINGIFY(SV_N_MAX) ")," \
        " m INTEGER NOT NULL CHECK (m IN (" STRINGIFY(SV_M_MIN) ", " STRINGIFY(SV_M_MAX) "))," \
        " p INTEGER NOT NULL CHECK (p BETWEEN " STRINGIFY(SV_P_MIN) " AND " STRINGIFY(SV_P_MAX) " AND 2 * p <= n)," \
        " epoch INTEGER NOT NULL,"                      /* u64 bit pattern */ \
        " created INTEGER NOT NULL," \
        " last_success INTEGER NOT NULL DEFAULT 0," \
        " last_failure INTEGER NOT NULL DEFAULT 0," \
        " failures INTEGER NOT NULL DEFAULT 0," \
        " enrollment INTEGER NOT NULL DEFAULT 0,"      /* random per enrollment (schema 2) */ \
        SCHEMA_KEX_COLUMN                               /* schema 4 */ \
        ");"

/* The columns of DEVICE_TABLE_SQL but num, as a copy from the schema 5 table names them. */
#define DEVICE_COLUMNS \
        "id, status, profile, n, m, p, epoch, created, last_success, last_failure, failures, enrollment, kex"

#define SCHEMA_6_VAULT_SQL \
        "CREATE TABLE vault (" \
        " slot INTEGER PRIMARY KEY,"                    /* device num * 2 + (epoch & 1) */ \
        " epoch INTEGER NOT NULL,"                      /* the generation, u64 bit pattern */ \
        " blob BLOB NOT NULL"                           /* iv || ct || tag */ \
        ");"

/*
 * The upgrade from schema 5 (and so from every earlier one), in the transaction of
 * migrate_schema(): the device rows are copied into a table without blobs (new nums, in rowid
 * order), their generations into the vault table, and the old table is dropped, its pages
 * zeroed by secure_delete. Revoked devices have no vault. The pending generation is epoch + 1
 * in u64: the one SQL sum on an epoch, with the wrap of the int64 bit pattern spelled out.
 */
#define SCHEMA_6_UPGRADE_SQL \
        DEVICE_TABLE_SQL("device_6") \
        "INSERT INTO device_6 (" DEVICE_COLUMNS ") SELECT " DEVICE_COLUMNS " FROM device ORDER BY rowid;" \
        SCHEMA_6_VAULT_SQL \
        "INSERT INTO vault (slot, epoch, blob) SELECT d.num * 2 + (o.epoch & 1), o.epoch, o.vault" \
        " FROM device o JOIN device_6 d ON d.id = o.id WHERE o.status = 'active';" \
        "INSERT INTO vault (slot, epoch, blob) SELECT d.num * 2 + (g.next & 1), g.next, g.pending FROM" \
        " (SELECT id, pending, CASE epoch WHEN 9223372036854775807 THEN -9223372036854775807 - 1" \
        "  ELSE epoch + 1 END AS next FROM device WHERE status = 'active' AND pending IS NOT NULL) g" \
        " JOIN device_6 d ON d.id = g.id;" \
        "DROP TABLE device;" \
        "ALTER TABLE device_6 RENAME TO device;" \
        "CREATE INDEX device_shape ON device (status, profile, n, m, p);" \
        "PRAGMA user_version = 6;"

static const char schema_sql[] =
        DEVICE_TABLE_SQL("device")
        SCHEMA_6_VAULT_SQL
        /* No foreign key on device: decoy handshakes name ids that are not enrolled. */
        "CREATE TABLE audit ("
        " id INTEGER PRIMARY KEY,"
        " time INTEGER NOT NULL,"
        " device TEXT,"
        " peer TEXT NOT NULL,"
        " outcome TEXT NOT NULL,"
        " epoch INTEGER NOT NULL"
        ");"
        "CREATE INDEX audit_device_time ON audit (device, time);"
        /* A known value sealed under the master key: a wrong key is refused at open, not at
         * the first device it fails to decrypt. */
        "CREATE TABLE keycheck ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " blob BLOB NOT NULL"
        ");"
        SCHEMA_3_SQL
        SCHEMA_5_SQL;

#define KEYCHECK_ID     "keycheck"
#define KEYCHECK_EPOCH  UINT64_MAX
#define KEYCHECK_LEN    16

/* The AEAD identity of decoy vaults: not a valid device id, so never a device's key or AD. */
#define DECOY_ID        "#decoy"
#define DECOY_HASH_LABEL "sv1 decoy shape"

/*
 * Columns shared by STMT_GET, STMT_LIST and STMT_LOOKUP, in this order after the id, from
 * ROW_FROM: the device d, its committed generation's row c and its pending one's p (NULL
 * when there is none). Reading c.epoch or p.epoch does not load a blob's overflow pages.
 */
#define ROW_COLUMNS \
        "d.status, d.profile, d.n, d.m, d.p, d.epoch, p.epoch, d.created, d.last_success, " \
        "d.last_failure, d.failures, d.enrollment, d.kex, c.epoch"
#define ROW_NCOLUMNS 14
#define ROW_FROM \
        " FROM device d LEFT JOIN vault c ON c.slot = d.num * 2 + (d.epoch & 1)" \
        " LEFT JOIN vault p ON p.slot = d.num * 2 + 1 - (d.epoch & 1)"

/* The vault slot of generation epoch_param (a parameter) of the device row dev. */
#define SLOT_OF(dev, epoch_param) dev ".num * 2 + (" epoch_param " & 1)"

enum {
        STMT_BEGIN,
        STMT_COMMIT_TX,
        STMT_ROLLBACK,
        STMT_GET,
        STMT_PROBE,
        STMT_ENROLL,
        STMT_SET_PENDING,
        STMT_PROMOTE,
        STMT_COMMIT,
        STMT_VAULT_PUT,
        STMT_VAULT_DROP,
        STMT_VAULT_CLEAR,
        STMT_REVOKE,
        STMT_FAILURE,
        STMT_AUDIT,
        STMT_LIST,
        STMT_COUNT,
        STMT_SHAPES,
        STMT_LOOKUP,
        STMT_SUMMARY,
        STMT_PRUNE_AUDIT,
        STMT_PRUNE_SUMMARY,
        STMT_DATA_VERSION,
        STMT_AGGREGATE_GET,
        STMT_AGGREGATE_PUT,
        STMT_AGGREGATE_LIST,
        _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT_TX] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        /* One row, or two with the same device columns: one per generation of the device. */
        [STMT_GET] =
                "SELECT d.id, " ROW_COLUMNS ", v.epoch, v.blob FROM device d"
                " LEFT JOIN vault c ON c.slot = d.num * 2 + (d.epoch & 1)"
                " LEFT JOIN vault p ON p.slot = d.num * 2 + 1 - (d.epoch & 1)"
                " LEFT JOIN vault v ON v.slot IN (d.num * 2, d.num * 2 + 1) WHERE d.id = ?1",
        [STMT_PROBE] =
                "SELECT d.status, d.epoch, p.epoch IS NOT NULL, d.n * d.m, d.enrollment FROM device d"
                " LEFT JOIN vault p ON p.slot = d.num * 2 + 1 - (d.epoch & 1) WHERE d.id = ?1",
        [STMT_ENROLL] =
                "INSERT INTO device (id, status, profile, n, m, p, epoch, created, enrollment, kex)"
                " VALUES (?1, 'active', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                " ON CONFLICT (id) DO UPDATE SET status = 'active', profile = ?2, n = ?3, m = ?4,"
                " p = ?5, epoch = ?6, created = ?7, last_success = 0, last_failure = 0, failures = 0,"
                " enrollment = ?8, kex = ?9 WHERE status = 'revoked'",
        /* The compare-and-set and the write in one statement: the pending generation ?3 goes in
         * only if the row is still the one the session read. It replaces an older pending one. */
        [STMT_SET_PENDING] =
                "INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("d", "?3") ", ?3, ?4 FROM device d"
                " WHERE d.id = ?1 AND d.epoch = ?2 AND d.status = 'active' AND d.n * d.m = ?5"
                " AND d.enrollment = ?6"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        /* The pending generation ?3 becomes committed; the caller then writes the next one
         * over the old committed generation's slot (STMT_VAULT_PUT). */
        [STMT_PROMOTE] =
                "UPDATE device SET epoch = ?3"
                " WHERE id = ?1 AND epoch = ?2 AND status = 'active' AND n * m = ?4 AND enrollment = ?5"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "?3") " AND epoch = ?3)",
        /* The compare-and-set of a commit; the caller then drops the old generation ?2. */
        [STMT_COMMIT] =
                "UPDATE device SET epoch = ?3, last_success = ?4, failures = 0"
                " WHERE id = ?1 AND epoch = ?2 AND status = 'active' AND enrollment = ?5"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "?3") " AND epoch = ?3)",
        /* Generation ?2 of the device, over whatever its slot held (same size: in place). */
        [STMT_VAULT_PUT] =
                "INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("d", "?2") ", ?2, ?3 FROM device d"
                " WHERE d.id = ?1"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        [STMT_VAULT_DROP] =
                "DELETE FROM vault WHERE slot = (SELECT " SLOT_OF("d", "?2") " FROM device d WHERE d.id = ?1)",
        [STMT_VAULT_CLEAR] =
                "DELETE FROM vault WHERE slot IN (SELECT d.num * 2 FROM device d WHERE d.id = ?1"
                " UNION ALL SELECT d.num * 2 + 1 FROM device d WHERE d.id = ?1)",
        [STMT_REVOKE] = "UPDATE device SET status = 'revoked' WHERE id = ?1 AND status = 'active'",
        [STMT_FAILURE] =
                "UPDATE device SET failures = min(failures + ?3, 4294967295),"
                " last_failure = max(last_failure, ?2) WHERE id = ?1",
        [STMT_AUDIT] =
                "INSERT INTO audit (time, device, peer, outcome, epoch) VALUES (?1, ?2, ?3, ?4, ?5)",
        [STMT_LIST] = "SELECT d.id, " ROW_COLUMNS ROW_FROM " ORDER BY d.id",
        [STMT_COUNT] = "SELECT count(*) FROM device",
        [STMT_SHAPES] =
                "SELECT profile, n, m, p, count(*), min(num) FROM device WHERE status = 'active'"
                " GROUP BY profile, n, m, p ORDER BY profile, n, m, p",
        /* The device's row, or else the stand-in's, in one statement: a compound SELECT with
         * LIMIT 1 does not run its second part once the first has given a row. */
        [STMT_LOOKUP] =
                "SELECT 1, d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM " WHERE d.id = ?1"
                " UNION ALL SELECT 0, d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM " WHERE d.num = ?2"
                " LIMIT 1",
        [STMT_SUMMARY] = "INSERT INTO audit_summary (time, outcome, count) VALUES (?1, ?2, ?3)",
        [STMT_PRUNE_AUDIT] =
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
        [STMT_PRUNE_SUMMARY] =
                "DELETE FROM audit_summary WHERE id IN"
                " (SELECT id FROM audit_summary WHERE time < ?1 ORDER BY time LIMIT ?2)",
        [STMT_DATA_VERSION] = "PRAGMA data_version",
        [STMT_AGGREGATE_GET] = "SELECT count, sum, min, max FROM aggregate WHERE name = ?1",
        [STMT_AGGREGATE_PUT] =
                "INSERT INTO aggregate (name, count, sum, min, max) VALUES (?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT (name) DO UPDATE SET count = ?2, sum = ?3, min = ?4, max = ?5",
        [STMT_AGGREGATE_LIST] = "SELECT name, count, sum, min, max FROM aggregate ORDER BY name",
};

struct store {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        struct store_aead *aead;
        uint8_t *seal;                  /* STORE_BLOB_MAX bytes: one sealed vault */
        bool in_batch;
        bool batch_sync;                /* the open batch stored a pending vault or an aggregate */
        bool batch_broken;              /* a write of the open batch failed half done: roll it back */
        char error[STORE_ERROR_MAX];
};

static _Thread_local char thread_error[STORE_ERROR_MAX];

/* The store never logs (store.h): it keeps the message for the caller. "%m" in fmt is
 * strerror(-r), as in common/log.h. */
__attribute__((format(printf, 4, 0)))
static void vformat(char *buf, size_t size, int r, const char *fmt, va_list ap) {
        int saved_errno = errno;

        errno = r < 0 ? -r : r;
        vsnprintf(buf, size, fmt, ap);
        errno = saved_errno;
}

/* Sets the message store_last_error(NULL) returns, and returns r. */
__attribute__((format(printf, 2, 3)))
static int thread_errorf(int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vformat(thread_error, sizeof(thread_error), r, fmt, ap);
        va_end(ap);
        return r;
}

/* Sets the message store_last_error(s) returns, and returns r. */
__attribute__((format(printf, 3, 4)))
static int fail(struct store *s, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vformat(s->error, sizeof(s->error), r, fmt, ap);
        va_end(ap);
        return r;
}

const char *store_last_error(const struct store *s) {
        return s ? s->error : thread_error;
}

static int errno_from_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_SCHEMA:
        case SQLITE_ERROR:      /* e.g. a table or column missing: not our schema */
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_TOOBIG:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* "Failed to <what>: <SQLite's message>"; call before resetting the statement. */
static int fail_db(struct store *s, int rc, const char *what) {
        return fail(s, errno_from_sqlite(rc) ?: -EIO, "Failed to %s: %s", what,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static void stmt_done(sqlite3_stmt *st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
}

/* _cleanup_(stmt_donep): one of struct store's statements, reset for its next use on every
 * exit (it stays prepared). */
static void stmt_donep(sqlite3_stmt **st) {
        if (*st)
                stmt_done(*st);
}

/* _cleanup_(sqlite3_finalizep): a statement prepared for one use. */
DEFINE_POINTER_CLEANUP(sqlite3_stmt *, sqlite3_finalize)

/* Runs a statement that returns no rows; on success returns the number of changed rows. */
static int run(struct store *s, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st), r;

        r = rc == SQLITE_DONE ? sqlite3_changes(s->db) : fail_db(s, rc, what);
        stmt_done(st);
        return r;
}

static bool id_valid(const char *id) {
        return id && vault_device_id_valid(id, strnlen(id, STORE_ID_MAX + 1));
}

static int check_id(struct store *s, const char *id) {
        /* The id is not echoed: it failed validation and may hold anything. */
        return id_valid(id) ? 0 : fail(s, -EINVAL, "Invalid device id: 1..%d characters of "
                                       "[A-Za-z0-9._:-] expected", STORE_ID_MAX);
}

/* The protocol's own rules (the profile table), applied to a row's values before any
 * narrowing cast. Devices carry no key share mode yet (protocol revision 1.1 §10). */
static bool params_valid(int64_t profile, int64_t n, int64_t m, int64_t p) {
        if (profile < 0 || n < 0 || m < 0 || p < 0)
                return false;
        return profile_check((uint64_t) profile, SV_KEX_NONE, (uint64_t) n, (uint64_t) m, (uint64_t) p) >= 0;
}

/* Durable commit: see the top of this file. */
static int sync_wal(struct store *s) {
        sqlite3_file *f = NULL;
        int rc;

        rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
        if (rc != SQLITE_OK || !f || !f->pMethods)
                return fail(s, -EIO, "Failed to sync the database: its write-ahead log is not open");
        rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
        if (rc != SQLITE_OK)
                return fail(s, -EIO, "Failed to sync the database's write-ahead log: %s",
                            sqlite3_errstr(rc));
        return 0;
}

/* Only one statement per call, so outside a batch it is its own transaction. */
static int after_durable_write(struct store *s) {
        if (s->in_batch) {
                s->batch_sync = true;
                return 0;
        }
        return sync_wal(s);
}

/*
 * A write of several statements is one transaction: the open batch's, or else its own. In a
 * batch, a write that fails after one of its statements changed the database breaks the
 * batch, which store_batch_commit() then rolls back: a half-done write is never committed.
 */
static int write_begin(struct store *s) {
        int r;

        if (s->in_batch)
                return 0;
        r = run(s, s->stmt[STMT_BEGIN], "begin a transaction");
        return r < 0 ? r : 0;
}

/* Ends what write_begin() began with the write's outcome r: rolled back if r < 0 (changed:
 * some of it was written), committed otherwise, and synced if durable. Returns r or the
 * commit's error. */
static int write_end(struct store *s, int r, bool changed, bool durable) {
        int rc;

        if (s->in_batch) {
                if (r < 0 && changed)
                        s->batch_broken = true;
                if (r >= 0 && durable)
                        s->batch_sync = true;
                return r;
        }
        if (r >= 0) {
                rc = run(s, s->stmt[STMT_COMMIT_TX], "commit the transaction");
                if (rc >= 0)
                        return durable && (rc = sync_wal(s)) < 0 ? rc : r;
                r = rc;
        }
        /* Keep the message of the failure, not of the rollback. */
        if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int exec(struct store *s, const char *sql, const char *what) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : fail_db(s, rc, what);
}

/* Reads an integer PRAGMA; the first read of the file, so it also detects a non-database. */
static int pragma_int(struct store *s, const char *sql, int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail_db(s, rc, "read the database");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int keycheck_write(struct store *s) {
        static const uint8_t zeros[KEYCHECK_LEN];
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_aead_seal(s->aead, KEYCHECK_ID, KEYCHECK_EPOCH, zeros, sizeof zeros, s->seal);
        if (r < 0)
                return fail(s, r, "Failed to seal the key check");
        rc = sqlite3_prepare_v2(s->db, "INSERT INTO keycheck (id, blob) VALUES (1, ?1)", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_blob(st, 1, s->seal, KEYCHECK_LEN + STORE_BLOB_OVERHEAD, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : fail_db(s, rc, "write the key check");
}

static int keycheck_verify(struct store *s, const char *path) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        uint8_t out[KEYCHECK_LEN];
        int rc, r = -EBADMSG;

        rc = sqlite3_prepare_v2(s->db, "SELECT blob FROM keycheck WHERE id = 1", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                r = store_aead_open(s->aead, KEYCHECK_ID, KEYCHECK_EPOCH, sqlite3_column_blob(st, 0),
                                    (size_t) sqlite3_column_bytes(st, 0), out, sizeof out) < 0 ? -EKEYREJECTED : 0;
        OPENSSL_cleanse(out, sizeof out);
        if (r == -EKEYREJECTED)
                return fail(s, r, "The master key does not open database '%s': wrong key file?", path);
        if (r < 0)
                return fail(s, r, "Database '%s' has no key check: not a secure-vault store", path);
        return 0;
}

static int create_schema(struct store *s) {
        int64_t version = 0, tables = 0;
        int r;

        r = exec(s, "BEGIN IMMEDIATE", "create the schema");
        if (r < 0)
                return r;
        /* Re-read under the write lock: another process may have created it meanwhile. */
        r = pragma_int(s, "PRAGMA user_version", &version);
        if (r >= 0)
                r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables);
        if (r >= 0 && version == 0 && tables > 0)
                r = fail(s, -EBADMSG, "The database is not a secure-vault store: it has tables "
                         "but no schema version");
        if (r >= 0 && version == 0) {
                r = exec(s, schema_sql, "create the schema");
                if (r >= 0)
                        r = keycheck_write(s);
                if (r >= 0)
                        r = exec(s, "PRAGMA user_version = " STRINGIFY(STORE_SCHEMA_VERSION),
                                 "create the schema");
        }
        if (r >= 0)
                r = exec(s, "COMMIT", "create the schema");
        if (r < 0)
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* Schema 3 had no kex: every device enrolled before it has none. The column is added only if
 * missing, so that the step can run whatever number the schemas around it end up with. */
static int upgrade_kex(struct store *s) {
        int64_t has = 0;
        int r;

        r = pragma_int(s, "SELECT count(*) FROM pragma_table_info('device') WHERE name = 'kex'", &has);
        if (r >= 0 && has == 0)
                r = exec(s, "ALTER TABLE device ADD COLUMN" SCHEMA_KEX_COLUMN, "add the kex column");
        if (r >= 0)
                r = exec(s, "PRAGMA user_version = 4", "upgrade the schema to version 4");
        return r;
}

/* Schema 1 had no enrollment token: existing rows keep 0, the next enrollment draws one.
 * Schema 2 had no audit_summary table and no indexes for pruning and decoy shapes.
 * Schema 4 had no aggregate table. Schema 5 kept the vaults in the device row. */
static int migrate_schema(struct store *s, int64_t version) {
        int r;

        if (version >= STORE_SCHEMA_VERSION)
                return 0;
        r = exec(s, "BEGIN IMMEDIATE", "upgrade the schema");
        if (r < 0)
                return r;
        r = pragma_int(s, "PRAGMA user_version", &version);
        if (r >= 0 && version == 1)
                r = exec(s, "ALTER TABLE device ADD COLUMN enrollment INTEGER NOT NULL DEFAULT 0;"
                         "PRAGMA user_version = 2", "upgrade the schema to version 2");
        if (r >= 0 && version <= 2)
                r = exec(s, SCHEMA_3_SQL "PRAGMA user_version = 3", "upgrade the schema to version 3");
        if (r >= 0 && version <= 3)
                r = upgrade_kex(s);
        if (r >= 0 && version <= 4)
                r = exec(s, SCHEMA_5_SQL "PRAGMA user_version = 5", "upgrade the schema to version 5");
        if (r >= 0 && version <= 5)
                r = exec(s, SCHEMA_6_UPGRADE_SQL, "upgrade the schema to version 6");
        if (r >= 0)
                r = exec(s, "COMMIT", "upgrade the schema");
        if (r < 0)
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* journal_mode answers with the mode it ended up in, e.g. "memory" on some filesystems. */
static int set_wal(struct store *s, const char *path) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail_db(s, rc, "switch the database to WAL mode");
        if (sqlite3_stricmp((const char *) sqlite3_column_text(st, 0), "wal") != 0)
                return fail(s, -EOPNOTSUPP, "Database '%s' cannot use WAL mode", path);
        return 0;
}

static int open_db(struct store *s, const char *path, int flags) {
        int64_t version = 0, tables = 0;
        int rc, r;

        /* SQLite would create the file 0644; its -wal and -shm files copy the mode we set. */
        if (flags & STORE_CREATE) {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);

                if (fd < 0)
                        return fail(s, -errno, "Failed to create database '%s': %m", path);
                close(fd);
        }
        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                             SQLITE_OPEN_NOMUTEX | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0),
                             NULL);
        if (rc != SQLITE_OK) {
                int e = s->db ? sqlite3_system_errno(s->db) : 0;

                if ((rc & 0xff) == SQLITE_CANTOPEN && e > 0)
                        return fail(s, -e, "Failed to open database '%s': %m", path);
                return fail_db(s, rc, "open the database");
        }
        /* SQLite falls back to read-only when it may not write: refuse that here. */
        if (sqlite3_db_readonly(s->db, "main") == 1)
                return fail(s, -EACCES, "Database '%s' is not writable", path);
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

        r = pragma_int(s, "PRAGMA user_version", &version);
        if (r == -EBADMSG)
                return fail(s, r, "Database '%s' is not a SQLite database or is corrupt: %s",
                            path, sqlite3_errmsg(s->db));
        if (r < 0)
                return r;
        if (version > STORE_SCHEMA_VERSION)
                return fail(s, -EPROTONOSUPPORT, "Database '%s' has schema version %lld, newer than "
                            "this authserver supports (%d): upgrade authserver",
                            path, (long long) version, STORE_SCHEMA_VERSION);
        if (version < 0)
                return fail(s, -EBADMSG, "Database '%s' has an invalid schema version %lld",
                            path, (long long) version);
        if (version == 0 && !(flags & STORE_CREATE)) {
                r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables);
                if (r < 0)
                        return r;
                return fail(s, tables > 0 ? -EBADMSG : -ENOENT, tables > 0 ?
                            "Database '%s' is not a secure-vault store" :
                            "Database '%s' is empty: it was never initialised", path);
        }

        r = set_wal(s, path);
        if (r < 0)
                return r;
        r = exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON",
                 "configure the database");
        if (r < 0)
                return r;

        if (version == 0) {
                r = create_schema(s);
                if (r < 0)
                        return r;
        } else {
                r = migrate_schema(s, version);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &s->stmt[i], NULL);
                if (rc != SQLITE_OK)
                        return fail(s, -EBADMSG, "Database '%s' does not have the expected schema: %s",
                                    path, sqlite3_errmsg(s->db));
        }
        return keycheck_verify(s, path);
}

/* The message of a failed step of the master key file (store-crypto.c). */
static int key_file_error(int r, const char *path, const struct store_key_failure *f) {
        switch (f->step) {
        case STORE_KEY_OPEN:
                return thread_errorf(r, "Failed to open master key file '%s': %m", path);
        case STORE_KEY_LOCK:
                return thread_errorf(r, "Failed to lock memory for master key file '%s': %m", path);
        case STORE_KEY_STAT:
                return thread_errorf(r, "Failed to stat master key file '%s': %m", path);
        case STORE_KEY_NOT_REGULAR:
                return thread_errorf(r, "Master key file '%s' is not a regular file", path);
        case STORE_KEY_MODE:
                return thread_errorf(r, "Master key file '%s' is accessible by group or others "
                                     "(mode %04o): refusing it, run chmod 0600", path, f->mode);
        case STORE_KEY_READ:
                return thread_errorf(r, "Failed to read master key file '%s': %m", path);
        case STORE_KEY_NOT_HEX:
                return thread_errorf(r, "Master key file '%s' has a character that is not a hex digit",
                                     path);
        case STORE_KEY_LENGTH:
                return thread_errorf(r, "Master key file '%s' must hold exactly %d bytes or %d hex digits",
                                     path, STORE_MASTER_KEY_LEN, 2 * STORE_MASTER_KEY_LEN);
        case STORE_KEY_LOCK_NEW:
                return thread_errorf(r, "Failed to lock memory for a master key: %m");
        case STORE_KEY_CREATE:
                return thread_errorf(r, "Failed to create master key file '%s': %m", path);
        case STORE_KEY_RANDOM:
                return thread_errorf(r, "Failed to generate a master key: no randomness");
        case STORE_KEY_WRITE:
                return thread_errorf(r, "Failed to write master key file '%s': %m", path);
        case STORE_KEY_SYNC:
                return thread_errorf(r, "Failed to sync master key file '%s': %m", path);
        case STORE_KEY_SYNC_DIR:
                return thread_errorf(r, "Failed to sync the directory of '%s': %m", path);
        }
        return thread_errorf(r, "Failed to use master key file '%s': %m", path);
}

int store_master_key_load(const char *path, uint8_t ret_key[STORE_MASTER_KEY_LEN]) {
        struct store_key_failure f = { 0 };
        int r = store_key_file_load(path, ret_key, &f);

        return r < 0 ? key_file_error(r, path, &f) : 0;
}

int store_master_key_create(const char *path) {
        struct store_key_failure f = { 0 };
        int r = store_key_file_create(path, &f);

        return r < 0 ? key_file_error(r, path, &f) : 0;
}

int store_open(const char *path, const uint8_t master_key[STORE_MASTER_KEY_LEN], int flags,
               struct store **ret) {
        _cleanup_(store_closep) struct store *s = NULL;
        int r;

        if (!path || !master_key || !ret || (flags & ~STORE_CREATE))
                return thread_errorf(-EINVAL, "Invalid arguments to store_open()");

        s = calloc(1, sizeof(*s));
        if (!s)
                return thread_errorf(-ENOMEM, "Out of memory");
        s->seal = malloc(STORE_BLOB_MAX);
        if (!s->seal)
                return thread_errorf(-ENOMEM, "Out of memory");
        r = store_aead_new(master_key, &s->aead);
        if (r < 0)
                return thread_errorf(r, "Failed to set up AES-256-GCM: OpenSSL has no usable implementation");
        r = open_db(s, path, flags);
        if (r < 0)
                return thread_errorf(r, "%s", s->error);
        *ret = TAKE_PTR(s);
        return 0;
}

void store_close(struct store *s) {
        if (!s)
                return;
        if (s->in_batch && s->db)
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmt[i]);
        /* The last connection checkpoints and removes the WAL. */
        sqlite3_close_v2(s->db);
        store_aead_free(s->aead);
        free(s->seal);
        OPENSSL_cleanse(s, sizeof(*s));
        free(s);
}

static int64_t u64_to_db(uint64_t v) {
        return (int64_t) v;     /* implementation-defined, two's complement on every target */
}

static uint64_t u64_from_db(int64_t v) {
        return (uint64_t) v;
}

/* The kex column: a mode the profile table allows with the row's profile (implemented or not). */
static int row_kex(struct store *s, sqlite3_stmt *st, int col, struct store_device *d) {
        int64_t kex = sqlite3_column_int64(st, col);

        if (kex < 0 || !profile_entry(d->profile, (uint64_t) kex))
                return fail(s, -EBADMSG, "Device '%s' has an invalid key exchange mode", d->id);
        d->kex = (uint8_t) kex;
        return 0;
}

/* Fills everything but the id and has_pending checks from columns first.. of st. */
static int row_to_device(struct store *s, sqlite3_stmt *st, const char *id, int first,
                         struct store_device *d) {
        const char *status = (const char *) sqlite3_column_text(st, first);
        int64_t profile = sqlite3_column_int64(st, first + 1), n = sqlite3_column_int64(st, first + 2),
                m = sqlite3_column_int64(st, first + 3), p = sqlite3_column_int64(st, first + 4),
                failures = sqlite3_column_int64(st, first + 10);
        int r;

        memset(d, 0, sizeof(*d));
        /* Range checks on the int64 values before any narrowing cast. */
        if (!id_valid(id) || !status || !params_valid(profile, n, m, p) ||
            failures < 0 || failures > UINT32_MAX)
                return fail(s, -EBADMSG, "The database has a corrupt device row");
        if (strcmp(status, "active") == 0)
                d->status = STORE_ACTIVE;
        else if (strcmp(status, "revoked") == 0)
                d->status = STORE_REVOKED;
        else
                return fail(s, -EBADMSG, "Device '%s' has an invalid status", id);

        strcpy(d->id, id);
        d->profile = (uint8_t) profile;
        d->n = (uint16_t) n;
        d->m = (uint8_t) m;
        d->p = (uint8_t) p;
        d->epoch = u64_from_db(sqlite3_column_int64(st, first + 5));
        /* The pending slot holds generation epoch + 1 or nothing (schema 6). */
        d->has_pending = sqlite3_column_type(st, first + 6) != SQLITE_NULL;
        d->created = sqlite3_column_int64(st, first + 7);
        d->last_success = sqlite3_column_int64(st, first + 8);
        d->last_failure = sqlite3_column_int64(st, first + 9);
        d->failures = (uint32_t) failures;
        d->enrollment = (uint64_t) sqlite3_column_int64(st, first + 11);
        r = row_kex(s, st, first + 12, d);
        if (r < 0)
                return r;
        if (d->has_pending && d->epoch == UINT64_MAX)
                return fail(s, -EBADMSG, "Device '%s' has a pending vault beyond the last epoch", id);
        if (d->has_pending && u64_from_db(sqlite3_column_int64(st, first + 6)) != d->epoch + 1)
                return fail(s, -EBADMSG, "Device '%s' has a vault of an unexpected generation", id);
        return 0;
}

/* Whether column col of st, a vault row's epoch, is generation epoch. */
static bool generation_is(sqlite3_stmt *st, int col, uint64_t epoch) {
        return sqlite3_column_type(st, col) != SQLITE_NULL && u64_from_db(sqlite3_column_int64(st, col)) == epoch;
}

/* After an update matched no row: say why. */
static int probe(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                 bool need_pending, size_t len) {
        sqlite3_stmt *st = s->stmt[STMT_PROBE];
        int rc, r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                r = fail(s, -ENOENT, "Device '%s' is not enrolled", id);
        else if (rc != SQLITE_ROW)
                r = fail_db(s, rc, "look up the device");
        else if (strcmp((const char *) sqlite3_column_text(st, 0) ?: "", "active") != 0)
                r = fail(s, -EKEYREVOKED, "Device '%s' is revoked", id);
        else if ((uint64_t) sqlite3_column_int64(st, 4) != enrollment)
                r = fail(s, -ESTALE, "Device '%s' was enrolled again", id);
        else if (u64_from_db(sqlite3_column_int64(st, 1)) != expect_epoch)
                r = fail(s, -ESTALE, "Device '%s' is no longer at epoch %llu", id,
                         (unsigned long long) expect_epoch);
        else if (need_pending && !sqlite3_column_int(st, 2))
                r = fail(s, -ESTALE, "Device '%s' has no pending vault", id);
        else if (len && (size_t) sqlite3_column_int64(st, 3) != len)
                r = fail(s, -EINVAL, "Vault of %zu bytes does not match the n*m of device '%s'",
                         len, id);
        else
                r = fail(s, -EIO, "Failed to update device '%s'", id);
        stmt_done(st);
        return r;
}

static int check_vault_len(struct store *s, const uint8_t *vault, size_t len) {
        if (!vault || len < SV_N_MIN * SV_M_MIN || len > STORE_VAULT_MAX || len % SV_M_MIN)
                return fail(s, -EINVAL, "Invalid vault length %zu", len);
        return 0;
}

/* Stores sealed as generation epoch of id, over what its slot held. */
static int vault_put(struct store *s, const char *id, uint64_t epoch, const uint8_t *sealed, size_t sealed_len) {
        sqlite3_stmt *st = s->stmt[STMT_VAULT_PUT];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(epoch));
        sqlite3_bind_blob(st, 3, sealed, (int) sealed_len, SQLITE_STATIC);
        r = run(s, st, "store the vault");
        return r == 1 ? 0 : r < 0 ? r : fail(s, -EIO, "Failed to store the vault of device '%s'", id);
}

/* Deletes both generations of id (secure_delete zeroes their pages). */
static int vault_clear(struct store *s, const char *id) {
        sqlite3_stmt *st = s->stmt[STMT_VAULT_CLEAR];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = run(s, st, "erase the vaults");
        return r < 0 ? r : 0;
}

int store_enroll(struct store *s, const struct store_device *dev, const uint8_t *vault,
                 size_t len, int64_t now) {
        sqlite3_stmt *st = s->stmt[STMT_ENROLL];
        uint64_t enrollment;
        bool changed;
        int r;

        r = check_id(s, dev->id);
        if (r < 0)
                return r;
        if (!params_valid(dev->profile, dev->n, dev->m, dev->p))
                return fail(s, -EINVAL, "Invalid parameters for device '%s': profile %u, n %u, m %u, p %u",
                            dev->id, dev->profile, dev->n, dev->m, dev->p);
        if (!profile_entry(dev->profile, dev->kex))
                return fail(s, -EINVAL, "Invalid key exchange mode %u for device '%s' (profile %u)",
                            dev->kex, dev->id, dev->profile);
        if (!vault || len != (size_t) dev->n * dev->m)
                return fail(s, -EINVAL, "Vault of device '%s' must be n*m = %zu bytes, not %zu",
                            dev->id, (size_t) dev->n * dev->m, len);

        r = crypto_random(&enrollment, sizeof enrollment);
        if (r < 0)
                return fail(s, r, "Failed to draw an enrollment token");
        r = store_aead_seal(s->aead, dev->id, dev->epoch, vault, len, s->seal);
        if (r < 0)
                return fail(s, r, "Failed to encrypt the vault of device '%s'", dev->id);
        r = write_begin(s);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, dev->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, dev->profile);
        sqlite3_bind_int(st, 3, dev->n);
        sqlite3_bind_int(st, 4, dev->m);
        sqlite3_bind_int(st, 5, dev->p);
        sqlite3_bind_int64(st, 6, u64_to_db(dev->epoch));
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, (int64_t) enrollment);
        sqlite3_bind_int(st, 9, dev->kex);
        r = run(s, st, "enroll the device");
        changed = r > 0;
        if (r == 0)
                r = fail(s, -EEXIST, "Device '%s' is already enrolled", dev->id);
        /* A revoked device has no vault left; whatever a damaged file still holds goes. */
        if (r > 0)
                r = vault_clear(s, dev->id);
        if (r >= 0)
                r = vault_put(s, dev->id, dev->epoch, s->seal, len + STORE_BLOB_OVERHEAD);
        /* An enrolled vault is as precious as a pending one. */
        r = write_end(s, r, changed, true);
        return r < 0 ? r : 0;
}

/* The message of a vault that did not open (store_aead_open()'s r). */
static int vault_open_failed(struct store *s, int r, const char *id) {
        if (r == -EBADMSG)
                return fail(s, r, "Vault of device '%s' fails authentication: wrong master key or "
                            "tampered database", id);
        return fail(s, r, "Failed to decrypt the vault of device '%s'", id);
}

/* The columns after ROW_COLUMNS in STMT_GET: one generation of the device, or NULLs. */
#define GET_EPOCH       (1 + ROW_NCOLUMNS)
#define GET_BLOB        (2 + ROW_NCOLUMNS)

int store_get(struct store *s, const char *id, struct store_device *ret, uint8_t *committed,
              uint8_t *pending, size_t cap) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = s->stmt[STMT_GET];
        struct store_device d;
        bool have_committed = false, wrote = false;
        size_t len;
        int rc, r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return fail(s, -ENOENT, "Device '%s' is not enrolled", id);
        if (rc != SQLITE_ROW)
                return fail_db(s, rc, "look up the device");
        r = row_to_device(s, st, id, 1, &d);
        if (r < 0)
                return r;

        len = (size_t) d.n * d.m;
        if ((committed || pending) && cap < len)
                return fail(s, -ENOBUFS, "Vault of device '%s' needs %zu bytes", id, len);
        if (d.status == STORE_REVOKED || (!committed && !pending)) {
                if (committed)
                        memset(committed, 0, len);
                if (pending)
                        memset(pending, 0, len);
                *ret = d;
                return 0;
        }
        /* A row per generation, each opened before the next step invalidates its blob. */
        do {
                uint64_t e = u64_from_db(sqlite3_column_int64(st, GET_EPOCH));
                uint8_t *out = NULL;

                if (sqlite3_column_type(st, GET_EPOCH) == SQLITE_NULL)
                        continue;
                if (e == d.epoch) {
                        have_committed = true;
                        out = committed;
                } else if (d.has_pending && e == d.epoch + 1)
                        out = pending;
                else {
                        r = fail(s, -EBADMSG, "Device '%s' has a vault of an unexpected generation", id);
                        break;
                }
                if (!out)
                        continue;
                wrote = true;
                r = store_aead_open(s->aead, id, e, sqlite3_column_blob(st, GET_BLOB),
                                    (size_t) sqlite3_column_bytes(st, GET_BLOB), out, len);
                if (r < 0) {
                        r = vault_open_failed(s, r, id);
                        break;
                }
        } while ((rc = sqlite3_step(st)) == SQLITE_ROW);
        if (r >= 0 && rc != SQLITE_DONE)
                r = fail_db(s, rc, "read the vaults");
        if (r >= 0 && !have_committed)
                r = fail(s, -EBADMSG, "Device '%s' has no committed vault", id);
        if (r < 0) {
                if (wrote && committed)
                        OPENSSL_cleanse(committed, len);
                if (wrote && pending)
                        OPENSSL_cleanse(pending, len);
                return r;
        }
        *ret = d;
        return 0;
}

int store_seal_next(struct store *s, const char *id, uint64_t epoch, const uint8_t *next, size_t len,
                    uint8_t *sealed) {
        int r;

        r = check_id(s, id);
        if (r >= 0)
                r = check_vault_len(s, next, len);
        if (r < 0)
                return r;
        if (!sealed)
                return fail(s, -EINVAL, "No buffer for the sealed vault");
        if (epoch == UINT64_MAX)
                return fail(s, -EOVERFLOW, "Device '%s' is at the last epoch and must be enrolled again", id);
        r = store_aead_seal(s->aead, id, epoch + 1, next, len, sealed);
        return r < 0 ? fail(s, r, "Failed to encrypt the vault of device '%s'", id) : 0;
}

/* The pending vault of M3: sealed for generation expect_epoch + 1 (promote: + 2). */
static int write_pending(struct store *s, bool promote, const char *id, uint64_t enrollment,
                         uint64_t expect_epoch, const uint8_t *sealed, size_t sealed_len) {
        sqlite3_stmt *st = s->stmt[promote ? STMT_PROMOTE : STMT_SET_PENDING];
        size_t len = sealed_len - STORE_BLOB_OVERHEAD;
        bool changed;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        if (!sealed || sealed_len < STORE_BLOB_OVERHEAD)
                return fail(s, -EINVAL, "Invalid sealed vault length %zu", sealed_len);
        r = check_vault_len(s, sealed, len);
        if (r < 0)
                return r;
        if (expect_epoch >= UINT64_MAX - (promote ? 1 : 0))
                return fail(s, -EOVERFLOW, "Device '%s' is at the last epoch and must be enrolled again",
                            id);

        if (!promote) {
                /* One statement: the compare-and-set and the write. */
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
                sqlite3_bind_int64(st, 3, u64_to_db(expect_epoch + 1));
                sqlite3_bind_blob(st, 4, sealed, (int) sealed_len, SQLITE_STATIC);
                sqlite3_bind_int64(st, 5, (int64_t) len);
                sqlite3_bind_int64(st, 6, (int64_t) enrollment);
                r = run(s, st, "store the pending vault");
                if (r < 0)
                        return r;
                if (r == 0)
                        return probe(s, id, enrollment, expect_epoch, false, len);
                return after_durable_write(s);
        }
        /* The pending generation becomes committed, and the next one takes the old
         * committed generation's slot (its parity), overwriting it. */
        r = write_begin(s);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
        sqlite3_bind_int64(st, 3, u64_to_db(expect_epoch + 1));
        sqlite3_bind_int64(st, 4, (int64_t) len);
        sqlite3_bind_int64(st, 5, (int64_t) enrollment);
        r = run(s, st, "promote the pending vault");
        changed = r > 0;
        if (r == 0)
                r = probe(s, id, enrollment, expect_epoch, true, len);
        if (r > 0)
                r = vault_put(s, id, expect_epoch + 2, sealed, sealed_len);
        r = write_end(s, r, changed, true);
        return r < 0 ? r : 0;
}

int store_set_pending_sealed(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                             const uint8_t *sealed, size_t sealed_len) {
        return write_pending(s, false, id, enrollment, expect_epoch, sealed, sealed_len);
}

int store_promote_and_set_pending_sealed(struct store *s, const char *id, uint64_t enrollment,
                                         uint64_t expect_epoch, const uint8_t *sealed, size_t sealed_len) {
        return write_pending(s, true, id, enrollment, expect_epoch, sealed, sealed_len);
}

/* The plaintext forms seal into the store's scratch blob first. */
static int seal_and_write(struct store *s, bool promote, const char *id, uint64_t enrollment,
                          uint64_t expect_epoch, const uint8_t *next, size_t len) {
        int r;

        if (promote && expect_epoch == UINT64_MAX)
                return fail(s, -EOVERFLOW, "Device '%s' is at the last epoch and must be enrolled again", id);
        r = store_seal_next(s, id, expect_epoch + (promote ? 1 : 0), next, len, s->seal);
        if (r < 0)
                return r;
        return write_pending(s, promote, id, enrollment, expect_epoch, s->seal, STORE_SEALED_LEN(len));
}

int store_set_pending(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                      const uint8_t *next, size_t len) {
        return seal_and_write(s, false, id, enrollment, expect_epoch, next, len);
}

int store_promote_and_set_pending(struct store *s, const char *id, uint64_t enrollment,
                                  uint64_t expect_epoch, const uint8_t *next, size_t len) {
        return seal_and_write(s, true, id, enrollment, expect_epoch, next, len);
}

int store_commit(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                 int64_t now) {
        sqlite3_stmt *st = s->stmt[STMT_COMMIT];
        bool changed;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        if (expect_epoch == UINT64_MAX)
                return fail(s, -EOVERFLOW, "Device '%s' is at the last epoch", id);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
        sqlite3_bind_int64(st, 3, u64_to_db(expect_epoch + 1));
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, (int64_t) enrollment);
        r = write_begin(s);
        if (r < 0)
                return r;
        r = run(s, st, "commit the pending vault");
        changed = r > 0;
        if (r == 0)
                r = probe(s, id, enrollment, expect_epoch, true, 0);
        /* The old generation goes: secure_delete zeroes its pages (a later M3 reuses them). */
        if (r > 0) {
                st = s->stmt[STMT_VAULT_DROP];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
                r = run(s, st, "erase the old vault");
        }
        r = write_end(s, r, changed, false);
        return r < 0 ? r : 0;
}

int store_revoke(struct store *s, const char *id) {
        sqlite3_stmt *st = s->stmt[STMT_REVOKE];
        bool changed;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        r = write_begin(s);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = run(s, st, "revoke the device");
        changed = r > 0;
        if (r > 0)
                r = vault_clear(s, id);
        /* An operator revoking a device expects it to stay revoked. */
        r = write_end(s, r, changed, changed);
        if (r < 0)
                return r;
        if (changed)
                return 1;
        r = probe(s, id, 0, 0, false, 0);
        return r == -EKEYREVOKED ? 0 : r;
}

int store_record_failure(struct store *s, const char *id, int64_t now) {
        return store_add_failures(s, id, 1, now);
}

int store_add_failures(struct store *s, const char *id, uint32_t count, int64_t last) {
        sqlite3_stmt *st = s->stmt[STMT_FAILURE];
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, last);
        sqlite3_bind_int64(st, 3, count);
        r = run(s, st, "record the failure");
        if (r == 0)
                return fail(s, -ENOENT, "Device '%s' is not enrolled", id);
        return r < 0 ? r : 0;
}

static bool text_valid(const char *t, size_t max) {
        size_t l;

        if (!t)
                return false;
        l = strnlen(t, max + 1);
        return l >= 1 && l <= max && text_is_printable(t, l, TEXT_NO_SPACE);
}

int store_audit(struct store *s, int64_t now, const char *id, const char *peer,
                const char *outcome, uint64_t epoch) {
        sqlite3_stmt *st = s->stmt[STMT_AUDIT];
        int r;

        if (id && !id_valid(id))
                return check_id(s, id);
        if (!text_valid(peer, STORE_PEER_MAX) || !text_valid(outcome, STORE_OUTCOME_MAX))
                return fail(s, -EINVAL, "Invalid audit record: peer and outcome must be short "
                            "printable ASCII");
        sqlite3_bind_int64(st, 1, now);
        if (id)
                sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, u64_to_db(epoch));
        r = run(s, st, "write the audit record");
        return r < 0 ? r : 0;
}

int store_list(struct store *s, store_list_cb cb, void *userdata) {
        sqlite3_stmt *st = s->stmt[STMT_LIST];
        struct store_device d;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = row_to_device(s, st, (const char *) sqlite3_column_text(st, 0), 1, &d);
                if (r < 0)
                        break;
                r = cb(&d, userdata);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = fail_db(s, rc, "list the devices");
        stmt_done(st);
        return r < 0 ? r : 0;
}

/* A statement that returns one integer. */
static int query_u64(struct store *s, int which, const char *what, uint64_t *ret) {
        sqlite3_stmt *st = s->stmt[which];
        int rc, r = 0;

        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = fail_db(s, rc, what);
        stmt_done(st);
        return r;
}

int store_count(struct store *s, uint64_t *ret_devices) {
        return query_u64(s, STMT_COUNT, "count the devices", ret_devices);
}

/* Reads the aggregate columns count, sum, min, max from col.. of st; -EBADMSG for a row no
 * fold can have written. */
static int row_to_aggregate(struct store *s, sqlite3_stmt *st, int col, struct aggregate *a) {
        a->count = u64_from_db(sqlite3_column_int64(st, col));
        a->sum = sqlite3_column_double(st, col + 1);
        a->min = sqlite3_column_double(st, col + 2);
        a->max = sqlite3_column_double(st, col + 3);
        if (a->count == 0 || !isfinite(a->sum) || !isfinite(a->min) || !isfinite(a->max) || a->min > a->max)
                return fail(s, -EBADMSG, "Aggregate '%s' in the database is corrupt", a->name);
        return 0;
}

int store_aggregate_add(struct store *s, const char *name, double value, struct aggregate *ret) {
        sqlite3_stmt *st = s->stmt[STMT_AGGREGATE_GET];
        struct aggregate a = { 0 };
        int rc, r = 0;

        if (!aggregate_name_valid(name))
                return fail(s, -EINVAL, "Invalid aggregate name");
        strcpy(a.name, name);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = row_to_aggregate(s, st, 0, &a);
        else if (rc != SQLITE_DONE)
                r = fail_db(s, rc, "read the aggregate");
        stmt_done(st);
        if (r < 0)
                return r;
        r = aggregate_fold(&a, value);
        if (r < 0)
                return fail(s, r, "Aggregate '%s' would leave the finite numbers", name);

        st = s->stmt[STMT_AGGREGATE_PUT];
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(a.count));
        sqlite3_bind_double(st, 3, a.sum);
        sqlite3_bind_double(st, 4, a.min);
        sqlite3_bind_double(st, 5, a.max);
        r = run(s, st, "write the aggregate");
        if (r < 0)
                return r;
        /* Answered only once durable: the batch it is in ends with an fsync. */
        if (s->in_batch)
                s->batch_sync = true;
        *ret = a;
        return 0;
}

int store_aggregate_list(struct store *s, store_aggregate_cb cb, void *userdata) {
        sqlite3_stmt *st = s->stmt[STMT_AGGREGATE_LIST];
        struct aggregate a;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);

                a = (struct aggregate) { 0 };
                if (!name || !aggregate_name_valid(name)) {
                        r = fail(s, -EBADMSG, "An aggregate name in the database is invalid");
                        break;
                }
                strcpy(a.name, name);
                r = row_to_aggregate(s, st, 1, &a);
                if (r >= 0)
                        r = cb(&a, userdata);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = fail_db(s, rc, "list the aggregates");
        stmt_done(st);
        return r < 0 ? r : 0;
}

int store_batch_begin(struct store *s) {
        int r;

        if (s->in_batch)
                return fail(s, -EBUSY, "A batch is already open");
        r = run(s, s->stmt[STMT_BEGIN], "begin a batch");
        if (r < 0)
                return r;
        s->in_batch = true;
        s->batch_sync = s->batch_broken = false;
        return 0;
}

int store_batch_commit(struct store *s, bool durable) {
        bool sync = durable || s->batch_sync, broken = s->batch_broken;
        int r;

        if (!s->in_batch)
                return fail(s, -EINVAL, "No batch is open");
        s->in_batch = s->batch_sync = s->batch_broken = false;
        /* An I/O error or a full disk inside the batch makes SQLite roll it back on its own. */
        if (sqlite3_get_autocommit(s->db))
                return fail(s, -EIO, "The batch was rolled back after an earlier error");
        if (broken) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return fail(s, -EIO, "The batch was rolled back: one of its writes failed half done");
        }
        r = run(s, s->stmt[STMT_COMMIT_TX], "commit the batch");
        if (r < 0) {
                /* Keep the message of the failed COMMIT, not of the rollback. */
                if (!sqlite3_get_autocommit(s->db))
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return r;
        }
        return sync ? sync_wal(s) : 0;
}

int store_batch_rollback(struct store *s) {
        int r;

        if (!s->in_batch)
                return fail(s, -EINVAL, "No batch is open");
        s->in_batch = s->batch_sync = s->batch_broken = false;
        if (sqlite3_get_autocommit(s->db))
                return 0;
        r = run(s, s->stmt[STMT_ROLLBACK], "roll back the batch");
        return r < 0 ? r : 0;
}

/* Reads column col of st's row into blob (cap bytes) as the lookup of a generation does, and
 * wipes it: the cost of a vault read whose result is not used. */
static void read_blob_unused(sqlite3_stmt *st, int col, uint8_t *blob, size_t cap) {
        size_t len = (size_t) sqlite3_column_bytes(st, col);
        const void *p = sqlite3_column_blob(st, col);

        if (p && len <= cap) {
                memcpy(blob, p, len);
                OPENSSL_cleanse(blob, len);
        }
}

/* STMT_LOOKUP's columns after the flag, the id and ROW_COLUMNS. */
#define LOOKUP_COMMITTED_EPOCH  (2 + ROW_NCOLUMNS - 1)  /* c.epoch, the last of ROW_COLUMNS */
#define LOOKUP_COMMITTED        (2 + ROW_NCOLUMNS)
#define LOOKUP_PENDING          (3 + ROW_NCOLUMNS)

/*
 * The lookup reads one row and one vault blob of it whatever the id: the generation M1 names;
 * the committed one when M1 names none (the device's row was read all the same); and for an
 * id that is not enrolled, the committed vault of the stand-in row, with the same statement,
 * so that a miss in the id index costs what a device's row does.
 */
int store_get_sealed(struct store *s, const char *id, uint64_t epoch, int64_t stand_in,
                     struct store_device *ret, uint8_t *blob, size_t cap, size_t *ret_len) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = s->stmt[STMT_LOOKUP];
        struct store_device d;
        size_t len = 0;
        int col = 0, rc, r;
        bool found;

        r = check_id(s, id);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, stand_in > 0 ? stand_in : -1);
        rc = sqlite3_step(st);
        found = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
        if (rc == SQLITE_ROW)
                r = row_to_device(s, st, found ? id : (const char *) sqlite3_column_text(st, 1), 2, &d);
        if (rc == SQLITE_DONE || (rc == SQLITE_ROW && !found)) {
                if (rc == SQLITE_ROW)
                        read_blob_unused(st, LOOKUP_COMMITTED, blob, cap);
                r = fail(s, -ENOENT, "Device '%s' is not enrolled", id);
        } else if (rc != SQLITE_ROW)
                r = fail_db(s, rc, "look up the device");
        if (r < 0)
                return r;
        /* The same choice as generation_choose() makes from the row: see protocol §5. A
         * committed vault row of another generation is a damaged file: no vault (-EBADMSG
         * for the caller). row_to_device() checked the pending row's generation. */
        if (d.status == STORE_ACTIVE && epoch == d.epoch && generation_is(st, LOOKUP_COMMITTED_EPOCH, epoch))
                col = LOOKUP_COMMITTED;
        else if (d.status == STORE_ACTIVE && d.has_pending && d.epoch != UINT64_MAX && epoch == d.epoch + 1)
                col = LOOKUP_PENDING;
        if (col) {
                len = (size_t) sqlite3_column_bytes(st, col);
                if (len > cap)
                        return fail(s, -EBADMSG, "Vault of device '%s' has an invalid size", id);
                memcpy(blob, sqlite3_column_blob(st, col), len);
        } else
                read_blob_unused(st, LOOKUP_COMMITTED, blob, cap);
        *ret = d;
        *ret_len = len;
        return 0;
}

int store_open_vault(struct store *s, const char *id, uint64_t epoch, const uint8_t *blob,
                     size_t blob_len, uint8_t *out, size_t len) {
        int r = store_aead_open(s->aead, id, epoch, blob, blob_len, out, len);

        return r < 0 ? vault_open_failed(s, r, id) : 0;
}

int store_decoy_seal(struct store *s, size_t len, uint8_t *blob) {
        uint8_t *plain;
        int r;

        if (len < SV_N_MIN * SV_M_MIN || len > STORE_VAULT_MAX)
                return fail(s, -EINVAL, "Invalid decoy vault length %zu", len);
        plain = malloc(len);
        if (!plain)
                return fail(s, -ENOMEM, "Out of memory");
        r = crypto_random(plain, len);
        if (r >= 0)
                r = store_aead_seal(s->aead, DECOY_ID, 0, plain, len, blob);
        OPENSSL_cleanse(plain, len);
        free(plain);
        return r < 0 ? fail(s, r, "Failed to seal a decoy vault") : 0;
}

int store_decoy_open(struct store *s, const uint8_t *blob, size_t len, uint8_t *out) {
        int r = store_aead_open(s->aead, DECOY_ID, 0, blob, len + STORE_BLOB_OVERHEAD, out, len);

        return r < 0 ? fail(s, r, "Failed to open a decoy vault") : 0;
}

int store_decoy_hash(struct store *s, const char *id, uint64_t *ret) {
        uint8_t h[32];
        uint64_t v = 0;
        int r;

        r = store_aead_keyed_hash(s->aead, DECOY_HASH_LABEL, id, h);
        if (r < 0)
                return fail(s, r, "Failed to hash a device id");
        for (int i = 0; i < 8; i++)
                v = v << 8 | h[i];
        OPENSSL_cleanse(h, sizeof h);
        *ret = v;
        return 0;
}

int store_shapes(struct store *s, store_shape_cb cb, void *userdata) {
        sqlite3_stmt *st = s->stmt[STMT_SHAPES];
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t profile = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1),
                        m = sqlite3_column_int64(st, 2), p = sqlite3_column_int64(st, 3),
                        count = sqlite3_column_int64(st, 4), stand_in = sqlite3_column_int64(st, 5);

                if (!params_valid(profile, n, m, p) || count < 1) {
                        r = fail(s, -EBADMSG, "The database has a corrupt device row");
                        break;
                }
                r = cb((uint8_t) profile, (uint16_t) n, (uint8_t) m, (uint8_t) p, (uint64_t) count, stand_in, userdata);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = fail_db(s, rc, "count the device shapes");
        stmt_done(st);
        return r < 0 ? r : 0;
}

int store_data_version(struct store *s, uint64_t *ret) {
        return query_u64(s, STMT_DATA_VERSION, "read the data version", ret);
}

int store_audit_summary(struct store *s, int64_t now, const char *outcome, uint64_t count) {
        sqlite3_stmt *st = s->stmt[STMT_SUMMARY];
        int r;

        if (!text_valid(outcome, STORE_OUTCOME_MAX) || count > INT64_MAX)
                return fail(s, -EINVAL, "Invalid audit summary");
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t) count);
        r = run(s, st, "write the audit summary");
        return r < 0 ? r : 0;
}

int store_audit_prune(struct store *s, int64_t before, unsigned limit) {
        int total = 0;

        for (int i = STMT_PRUNE_AUDIT; i <= STMT_PRUNE_SUMMARY && total < (int) limit; i++) {
                sqlite3_stmt *st = s->stmt[i];
                int r;

                sqlite3_bind_int64(st, 1, before);
                sqlite3_bind_int64(st, 2, (int64_t) limit - total);
                r = run(s, st, "prune the audit trail");
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}
