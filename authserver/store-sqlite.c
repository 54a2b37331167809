/* SPDX-License-Identifier: MIT */

/*
 * The store's SQLite back end (store-backend.h): one database file in WAL mode. The decisions
 * worth knowing:
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
 * Hygiene. Plaintext vaults never reach SQLite: store.c seals them (store-crypto.c) before
 * they come here. A commit deletes the old generation's row and secure_delete overwrites the
 * freed pages, so old vault generations do not linger in the file; trusted_schema=OFF and the
 * defensive flag limit what a tampered database file can do.
 *
 * Layout (schema 6). Each generation is a row of the vault table, so that a handshake writes
 * the one generation that changes: M3 the new pending one, M5 the device row and the removal
 * of the old one. See SCHEMA_6_VAULT_SQL.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "cleanup.h"
#include "profile.h"
#include "store.h"
#include "store-backend.h"

/* A busy database stalls the event loop, so wait for an admin command briefly only. */
#define STORE_BUSY_TIMEOUT_MS   2000

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

/*
 * Schema 7: a device's session claim (docs/architecture.md, "Many servers on one database"):
 * the instance id of the process whose session is past M3 (0: none), the epoch its M1 named,
 * and until when (unix ms) it holds. Added by ALTER TABLE, in a new database too.
 */
#define SCHEMA_7_SQL \
        "ALTER TABLE device ADD COLUMN claim_owner INTEGER NOT NULL DEFAULT 0;" \
        "ALTER TABLE device ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0;" \
        "ALTER TABLE device ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;"

/* The database's clock in unix ms, the clock of the claims. */
#define NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

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
        STMT_SET_PENDING_CLAIMED,
        STMT_CLAIM,
        STMT_PROMOTE,
        STMT_COMMIT,
        STMT_VAULT_PUT,
        STMT_VAULT_DROP,
        STMT_VAULT_CLEAR,
        STMT_REVOKE,
        STMT_RELEASE,
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
                "SELECT d.status, d.epoch, p.epoch IS NOT NULL, d.n * d.m, d.enrollment, d.claim_owner,"
                " d.claim_owner <> 0 AND d.claim_until >= " NOW_MS " FROM device d"
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
        /* The same with the session claim: free, owner ?7's, or expired; the caller then takes
         * it (STMT_CLAIM, same transaction). */
        [STMT_SET_PENDING_CLAIMED] =
                "INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("d", "?3") ", ?3, ?4 FROM device d"
                " WHERE d.id = ?1 AND d.epoch = ?2 AND d.status = 'active' AND d.n * d.m = ?5"
                " AND d.enrollment = ?6 AND (d.claim_owner IN (0, ?7) OR d.claim_until < " NOW_MS ")"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        [STMT_CLAIM] =
                "UPDATE device SET claim_owner = ?2, claim_epoch = ?3, claim_until = " NOW_MS " + ?4 WHERE id = ?1",
        /* The pending generation ?3 becomes committed; the caller then writes the next one
         * over the old committed generation's slot (STMT_VAULT_PUT). With owner ?6 (0: none)
         * the claim is checked and taken; one of the epoch ?2 may be taken over. */
        [STMT_PROMOTE] =
                "UPDATE device SET epoch = ?3,"
                " claim_owner = CASE ?6 WHEN 0 THEN claim_owner ELSE ?6 END,"
                " claim_epoch = CASE ?6 WHEN 0 THEN claim_epoch ELSE ?3 END,"
                " claim_until = CASE ?6 WHEN 0 THEN claim_until ELSE " NOW_MS " + ?7 END"
                " WHERE id = ?1 AND epoch = ?2 AND status = 'active' AND n * m = ?4 AND enrollment = ?5"
                " AND (?6 = 0 OR claim_owner IN (0, ?6) OR claim_epoch = ?2 OR claim_until < " NOW_MS ")"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "?3") " AND epoch = ?3)",
        /* The compare-and-set of a commit (under owner ?6's claim unless 0), which releases the
         * claim; the caller then drops the old generation ?2. */
        [STMT_COMMIT] =
                "UPDATE device SET epoch = ?3, last_success = ?4, failures = 0, claim_owner = 0, claim_until = 0"
                " WHERE id = ?1 AND epoch = ?2 AND status = 'active' AND enrollment = ?5"
                " AND (?6 = 0 OR claim_owner = ?6)"
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
        [STMT_RELEASE] = "UPDATE device SET claim_owner = 0, claim_until = 0"
                " WHERE id = ?1 AND claim_owner = ?2 AND claim_epoch = ?3",
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
        /* The device's row, or else the stand-in's, in one statement that names the row it
         * reads (num is the key): no row order to rely on, and the same work for every id,
         * the id's index probed, then one row read by its number. */
        [STMT_LOOKUP] =
                "SELECT d.id = ?1, d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM
                " WHERE d.num = coalesce((SELECT num FROM device WHERE id = ?1), ?2)",
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

struct store_db {
        struct store *s;                /* for store_fail() */
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        bool in_batch;
        bool batch_sync;                /* the open batch stored a pending vault or an aggregate */
        bool batch_broken;              /* a write of the open batch failed half done: roll it back */
        int lock_fd;                    /* the serving lock's descriptor of the file, or -1 */
        bool locked;                    /* the serving lock is held on lock_fd */
};

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
static int fail_db(struct store_db *d, int rc, const char *what) {
        return store_fail(d->s, errno_from_sqlite(rc) ?: -EIO, "Failed to %s: %s", what,
                          d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
}

static void stmt_done(sqlite3_stmt *st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
}

/* _cleanup_(stmt_donep): one of struct store_db's statements, reset for its next use on every
 * exit (it stays prepared). */
static void stmt_donep(sqlite3_stmt **st) {
        if (*st)
                stmt_done(*st);
}

/* _cleanup_(sqlite3_finalizep): a statement prepared for one use. */
DEFINE_POINTER_CLEANUP(sqlite3_stmt *, sqlite3_finalize)

/* Runs a statement that returns no rows; on success returns the number of changed rows. */
static int run(struct store_db *d, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st), r;

        r = rc == SQLITE_DONE ? sqlite3_changes(d->db) : fail_db(d, rc, what);
        stmt_done(st);
        return r;
}

/* Durable commit: see the top of this file. */
static int sync_wal(struct store_db *d) {
        sqlite3_file *f = NULL;
        int rc;

        rc = sqlite3_file_control(d->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
        if (rc != SQLITE_OK || !f || !f->pMethods)
                return store_fail(d->s, -EIO, "Failed to sync the database: its write-ahead log is not open");
        rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
        if (rc != SQLITE_OK)
                return store_fail(d->s, -EIO, "Failed to sync the database's write-ahead log: %s",
                                  sqlite3_errstr(rc));
        return 0;
}

/* Only one statement per call, so outside a batch it is its own transaction. */
static int after_durable_write(struct store_db *d) {
        if (d->in_batch) {
                d->batch_sync = true;
                return 0;
        }
        return sync_wal(d);
}

/*
 * A write of several statements is one transaction: the open batch's, or else its own. In a
 * batch, a write that fails after one of its statements changed the database breaks the
 * batch, which batch_commit() then rolls back: a half-done write is never committed.
 */
static int write_begin(struct store_db *d) {
        int r;

        if (d->in_batch)
                return 0;
        r = run(d, d->stmt[STMT_BEGIN], "begin a transaction");
        return r < 0 ? r : 0;
}

/* Ends what write_begin() began with the write's outcome r: rolled back if r < 0 (changed:
 * some of it was written), committed otherwise, and synced if durable. Returns r or the
 * commit's error. */
static int write_end(struct store_db *d, int r, bool changed, bool durable) {
        int rc;

        if (d->in_batch) {
                if (r < 0 && changed)
                        d->batch_broken = true;
                if (r >= 0 && durable)
                        d->batch_sync = true;
                return r;
        }
        if (r >= 0) {
                rc = run(d, d->stmt[STMT_COMMIT_TX], "commit the transaction");
                if (rc >= 0)
                        return durable && (rc = sync_wal(d)) < 0 ? rc : r;
                r = rc;
        }
        /* Keep the message of the failure, not of the rollback. */
        if (!sqlite3_get_autocommit(d->db))
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* write_begin() and the write's first statement st, its parameters bound: the number of rows
 * it changed. write_end() ends it either way (after a failed begin too: nothing to roll back
 * then). */
static int write_run(struct store_db *d, sqlite3_stmt *st, const char *what) {
        int r = write_begin(d);

        if (r < 0) {
                stmt_done(st);
                return r;
        }
        return run(d, st, what);
}

static int exec(struct store_db *d, const char *sql, const char *what) {
        int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : fail_db(d, rc, what);
}

/* Reads an integer PRAGMA; the first read of the file, so it also detects a non-database. */
static int pragma_int(struct store_db *d, const char *sql, int64_t *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail_db(d, rc, "read the database");
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int keycheck_write(struct store_db *d, const uint8_t *keycheck, size_t len) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "INSERT INTO keycheck (id, blob) VALUES (1, ?1)", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_blob(st, 1, keycheck, (int) len, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : fail_db(d, rc, "write the key check");
}

static int sqlite_keycheck_get(struct store_db *d, uint8_t *buf, size_t cap, size_t *ret_len) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        size_t len;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "SELECT blob FROM keycheck WHERE id = 1", -1, &st, NULL);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                return -EBADMSG;
        len = (size_t) sqlite3_column_bytes(st, 0);
        if (len > cap)
                return -EBADMSG;
        if (len)
                memcpy(buf, sqlite3_column_blob(st, 0), len);
        *ret_len = len;
        return 0;
}

static int create_schema(struct store_db *d, const uint8_t *keycheck, size_t keycheck_len) {
        int64_t version = 0, tables = 0;
        int r;

        r = exec(d, "BEGIN IMMEDIATE", "create the schema");
        if (r < 0)
                return r;
        /* Re-read under the write lock: another process may have created it meanwhile. */
        r = pragma_int(d, "PRAGMA user_version", &version);
        if (r >= 0)
                r = pragma_int(d, "SELECT count(*) FROM sqlite_master", &tables);
        if (r >= 0 && version == 0 && tables > 0)
                r = store_fail(d->s, -EBADMSG, "The database is not a secure-vault store: it has tables "
                               "but no schema version");
        if (r >= 0 && version == 0) {
                r = exec(d, schema_sql, "create the schema");
                if (r >= 0)
                        r = keycheck_write(d, keycheck, keycheck_len);
                if (r >= 0)
                        r = exec(d, SCHEMA_7_SQL "PRAGMA user_version = " STRINGIFY(STORE_SCHEMA_VERSION),
                                 "create the schema");
        }
        if (r >= 0)
                r = exec(d, "COMMIT", "create the schema");
        if (r < 0)
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* Schema 3 had no kex: every device enrolled before it has none. The column is added only if
 * missing, so that the step can run whatever number the schemas around it end up with. */
static int upgrade_kex(struct store_db *d) {
        int64_t has = 0;
        int r;

        r = pragma_int(d, "SELECT count(*) FROM pragma_table_info('device') WHERE name = 'kex'", &has);
        if (r >= 0 && has == 0)
                r = exec(d, "ALTER TABLE device ADD COLUMN" SCHEMA_KEX_COLUMN, "add the kex column");
        if (r >= 0)
                r = exec(d, "PRAGMA user_version = 4", "upgrade the schema to version 4");
        return r;
}

/* Schema 1 had no enrollment token: existing rows keep 0, the next enrollment draws one.
 * Schema 2 had no audit_summary table and no indexes for pruning and decoy shapes.
 * Schema 4 had no aggregate table. Schema 5 kept the vaults in the device row. Schema 6 had no
 * session claims. */
static int migrate_schema(struct store_db *d, int64_t version) {
        int r;

        if (version >= STORE_SCHEMA_VERSION)
                return 0;
        r = exec(d, "BEGIN IMMEDIATE", "upgrade the schema");
        if (r < 0)
                return r;
        r = pragma_int(d, "PRAGMA user_version", &version);
        if (r >= 0 && version == 1)
                r = exec(d, "ALTER TABLE device ADD COLUMN enrollment INTEGER NOT NULL DEFAULT 0;"
                         "PRAGMA user_version = 2", "upgrade the schema to version 2");
        if (r >= 0 && version <= 2)
                r = exec(d, SCHEMA_3_SQL "PRAGMA user_version = 3", "upgrade the schema to version 3");
        if (r >= 0 && version <= 3)
                r = upgrade_kex(d);
        if (r >= 0 && version <= 4)
                r = exec(d, SCHEMA_5_SQL "PRAGMA user_version = 5", "upgrade the schema to version 5");
        if (r >= 0 && version <= 5)
                r = exec(d, SCHEMA_6_UPGRADE_SQL, "upgrade the schema to version 6");
        if (r >= 0 && version <= 6)
                r = exec(d, SCHEMA_7_SQL "PRAGMA user_version = 7", "upgrade the schema to version 7");
        if (r >= 0)
                r = exec(d, "COMMIT", "upgrade the schema");
        if (r < 0)
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

/* journal_mode answers with the mode it ended up in, e.g. "memory" on some filesystems. */
static int set_wal(struct store_db *d, const char *path) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return fail_db(d, rc, "switch the database to WAL mode");
        if (sqlite3_stricmp((const char *) sqlite3_column_text(st, 0), "wal") != 0)
                return store_fail(d->s, -EOPNOTSUPP, "Database '%s' cannot use WAL mode", path);
        return 0;
}

static int open_db(struct store_db *d, const char *path, int flags, const uint8_t *keycheck,
                   size_t keycheck_len) {
        int64_t version = 0, tables = 0;
        int rc, r;

        /* SQLite would create the file 0644; its -wal and -shm files copy the mode we set. */
        if (flags & STORE_CREATE) {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);

                if (fd < 0)
                        return store_fail(d->s, -errno, "Failed to create database '%s': %m", path);
                close(fd);
        }
        rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                             SQLITE_OPEN_NOMUTEX | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0),
                             NULL);
        if (rc != SQLITE_OK) {
                int e = d->db ? sqlite3_system_errno(d->db) : 0;

                if ((rc & 0xff) == SQLITE_CANTOPEN && e > 0)
                        return store_fail(d->s, -e, "Failed to open database '%s': %m", path);
                return fail_db(d, rc, "open the database");
        }
        /* SQLite falls back to read-only when it may not write: refuse that here. */
        if (sqlite3_db_readonly(d->db, "main") == 1)
                return store_fail(d->s, -EACCES, "Database '%s' is not writable", path);
        sqlite3_extended_result_codes(d->db, 1);
        sqlite3_busy_timeout(d->db, STORE_BUSY_TIMEOUT_MS);
        sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

        r = pragma_int(d, "PRAGMA user_version", &version);
        if (r == -EBADMSG)
                return store_fail(d->s, r, "Database '%s' is not a SQLite database or is corrupt: %s",
                                  path, sqlite3_errmsg(d->db));
        if (r < 0)
                return r;
        if (version > STORE_SCHEMA_VERSION)
                return store_fail(d->s, -EPROTONOSUPPORT, "Database '%s' has schema version %lld, newer "
                                  "than this authserver supports (%d): upgrade authserver",
                                  path, (long long) version, STORE_SCHEMA_VERSION);
        if (version < 0)
                return store_fail(d->s, -EBADMSG, "Database '%s' has an invalid schema version %lld",
                                  path, (long long) version);
        if (version == 0 && !(flags & STORE_CREATE)) {
                r = pragma_int(d, "SELECT count(*) FROM sqlite_master", &tables);
                if (r < 0)
                        return r;
                return store_fail(d->s, tables > 0 ? -EBADMSG : -ENOENT, tables > 0 ?
                                  "Database '%s' is not a secure-vault store" :
                                  "Database '%s' is empty: it was never initialised", path);
        }

        r = set_wal(d, path);
        if (r < 0)
                return r;
        r = exec(d, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON",
                 "configure the database");
        if (r < 0)
                return r;

        if (version == 0) {
                r = create_schema(d, keycheck, keycheck_len);
                if (r < 0)
                        return r;
        } else {
                r = migrate_schema(d, version);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(d->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &d->stmt[i], NULL);
                if (rc != SQLITE_OK)
                        return store_fail(d->s, -EBADMSG, "Database '%s' does not have the expected "
                                          "schema: %s", path, sqlite3_errmsg(d->db));
        }
        return 0;
}

static void sqlite_close(struct store_db *d) {
        if (!d)
                return;
        if (d->in_batch && d->db)
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(d->stmt[i]);
        /* The last connection checkpoints and removes the WAL. */
        sqlite3_close_v2(d->db);
        /* Closed after the connection: closing any descriptor of the file drops the POSIX locks
         * SQLite holds on it in this process, which is why serve takes the serving lock on the
         * handle it closes last. */
        if (d->lock_fd >= 0)
                close(d->lock_fd);
        free(d);
}

/* flock() is independent of SQLite's own POSIX locks (fcntl) on the file. The descriptor is
 * kept, also when the lock is refused, until sqlite_close() has closed the connection. */
static int sqlite_serving_lock(struct store_db *d, bool exclusive) {
        const char *path = sqlite3_db_filename(d->db, "main");
        int r;

        if (d->locked)
                return store_fail(d->s, -EALREADY, "The serving lock is already held");
        if (d->lock_fd < 0) {
                if (!path || !*path)
                        return store_fail(d->s, -EINVAL, "The database has no file to lock");
                d->lock_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (d->lock_fd < 0) {
                        r = -errno;
                        return store_fail(d->s, r, "Cannot open the database file to lock it: %s", strerror(-r));
                }
        }
        if (flock(d->lock_fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
                d->locked = true;
                return 0;
        }
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (r != -EBUSY)
                return store_fail(d->s, r, "Cannot lock the database file: %s", strerror(-r));
        return store_fail(d->s, r, exclusive ? "An authserver serves this database (it holds the file's lock)" :
                          "authserver migrate is copying this database (it holds the file's lock)");
}

DEFINE_POINTER_CLEANUP(struct store_db *, sqlite_close)

static int sqlite_open(struct store *s, const char *path, int flags, const uint8_t *keycheck,
                       size_t keycheck_len, struct store_db **ret) {
        _cleanup_(sqlite_closep) struct store_db *d = NULL;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return store_fail(s, -ENOMEM, "Out of memory");
        d->s = s;
        d->lock_fd = -1;
        r = open_db(d, path, flags, keycheck, keycheck_len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

static int64_t u64_to_db(uint64_t v) {
        return (int64_t) v;     /* implementation-defined, two's complement on every target */
}

/* ?1..?3 of a compare-and-set on generation expect_epoch of id: the id, the epoch the write
 * expects, and the next one. */
static void bind_cas(sqlite3_stmt *st, const char *id, uint64_t expect_epoch) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
        sqlite3_bind_int64(st, 3, u64_to_db(expect_epoch + 1));
}

/* The first row of a read of one device, its parameters bound: 0 on a row, -ENOENT if
 * there is none. */
static int step_row(struct store_db *d, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st);

        if (rc == SQLITE_DONE)
                return -ENOENT;
        return rc == SQLITE_ROW ? 0 : fail_db(d, rc, what);
}

/* Whether column col of st is NULL. */
static bool is_null(sqlite3_stmt *st, int col) {
        return sqlite3_column_type(st, col) == SQLITE_NULL;
}

/* Reads ROW_COLUMNS from column first of st, the id from column id_col. */
static void read_row(sqlite3_stmt *st, int id_col, int first, struct store_row *row) {
        *row = (struct store_row) { 0 };
        store_row_text(row->id, (const char *) sqlite3_column_text(st, id_col));
        store_row_text(row->status, (const char *) sqlite3_column_text(st, first));
        row->profile = sqlite3_column_int64(st, first + 1);
        row->n = sqlite3_column_int64(st, first + 2);
        row->m = sqlite3_column_int64(st, first + 3);
        row->p = sqlite3_column_int64(st, first + 4);
        row->epoch = sqlite3_column_int64(st, first + 5);
        row->has_pending = !is_null(st, first + 6);
        row->pending_epoch = sqlite3_column_int64(st, first + 6);
        row->created = sqlite3_column_int64(st, first + 7);
        row->last_success = sqlite3_column_int64(st, first + 8);
        row->last_failure = sqlite3_column_int64(st, first + 9);
        row->failures = sqlite3_column_int64(st, first + 10);
        row->enrollment = sqlite3_column_int64(st, first + 11);
        row->kex = sqlite3_column_int64(st, first + 12);
        row->has_committed = !is_null(st, first + 13);
        row->committed_epoch = sqlite3_column_int64(st, first + 13);
}

static int sqlite_probe(struct store_db *d, const char *id, struct store_probe *ret) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_PROBE];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = step_row(d, st, "look up the device");
        if (r < 0)
                return r;
        *ret = (struct store_probe) {
                .active = strcmp((const char *) sqlite3_column_text(st, 0) ?: "", "active") == 0,
                .epoch = sqlite3_column_int64(st, 1),
                .has_pending = sqlite3_column_int(st, 2),
                .vault_len = sqlite3_column_int64(st, 3),
                .enrollment = sqlite3_column_int64(st, 4),
                .claim_owner = sqlite3_column_int64(st, 5),
                .claim_live = sqlite3_column_int(st, 6),
        };
        return 0;
}

/* Stores sealed as generation epoch of id, over what its slot held. */
static int vault_put(struct store_db *d, const char *id, uint64_t epoch, const uint8_t *sealed,
                     size_t sealed_len) {
        sqlite3_stmt *st = d->stmt[STMT_VAULT_PUT];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(epoch));
        sqlite3_bind_blob(st, 3, sealed, (int) sealed_len, SQLITE_STATIC);
        r = run(d, st, "store the vault");
        return r == 1 ? 0 : r < 0 ? r : store_fail(d->s, -EIO, "Failed to store the vault of device '%s'", id);
}

/* Deletes both generations of id (secure_delete zeroes their pages). */
static int vault_clear(struct store_db *d, const char *id) {
        sqlite3_stmt *st = d->stmt[STMT_VAULT_CLEAR];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = run(d, st, "erase the vaults");
        return r < 0 ? r : 0;
}

static int sqlite_enroll(struct store_db *d, const struct store_device *dev, uint64_t enrollment, int64_t now,
                         const uint8_t *sealed, size_t sealed_len) {
        sqlite3_stmt *st = d->stmt[STMT_ENROLL];
        bool changed;
        int r;

        sqlite3_bind_text(st, 1, dev->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, dev->profile);
        sqlite3_bind_int(st, 3, dev->n);
        sqlite3_bind_int(st, 4, dev->m);
        sqlite3_bind_int(st, 5, dev->p);
        sqlite3_bind_int64(st, 6, u64_to_db(dev->epoch));
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, (int64_t) enrollment);
        sqlite3_bind_int(st, 9, dev->kex);
        r = write_run(d, st, "enroll the device");
        changed = r > 0;
        /* A revoked device has no vault left; whatever a damaged file still holds goes. */
        if (r > 0)
                r = vault_clear(d, dev->id);
        if (r >= 0 && changed)
                r = vault_put(d, dev->id, dev->epoch, sealed, sealed_len);
        /* An enrolled vault is as precious as a pending one. */
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

/* The columns after ROW_COLUMNS in STMT_GET: one generation of the device, or NULLs. */
#define GET_EPOCH       (1 + ROW_NCOLUMNS)
#define GET_BLOB        (2 + ROW_NCOLUMNS)

static int sqlite_get(struct store_db *d, const char *id, struct store_row *ret, struct store_blob vaults[2]) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_GET];
        size_t i = 0;
        int r, rc;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = step_row(d, st, "look up the device");
        if (r < 0)
                return r;
        read_row(st, 0, 1, ret);
        if (!vaults)
                return 0;
        vaults[0].present = vaults[1].present = false;
        /* A row per generation, each copied before the next step invalidates its blob. */
        do {
                struct store_blob *b;

                if (is_null(st, GET_EPOCH))
                        continue;
                if (i == 2)
                        return store_fail(d->s, -EBADMSG, "Device '%s' has more than two vaults", id);
                b = &vaults[i++];
                b->present = true;
                b->epoch = sqlite3_column_int64(st, GET_EPOCH);
                b->len = (size_t) sqlite3_column_bytes(st, GET_BLOB);
                if (b->len <= b->cap && b->len)
                        memcpy(b->data, sqlite3_column_blob(st, GET_BLOB), b->len);
        } while ((rc = sqlite3_step(st)) == SQLITE_ROW);
        if (rc != SQLITE_DONE)
                return fail_db(d, rc, "read the vaults");
        return 0;
}

/* The parameters ?1 to ?6 of STMT_SET_PENDING and STMT_SET_PENDING_CLAIMED. */
static void bind_pending(sqlite3_stmt *st, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                         const uint8_t *sealed, size_t sealed_len, size_t vault_len) {
        bind_cas(st, id, expect_epoch);
        sqlite3_bind_blob(st, 4, sealed, (int) sealed_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (int64_t) vault_len);
        sqlite3_bind_int64(st, 6, (int64_t) enrollment);
}

/* The claimed pending write: the compare-and-set with the claim's check and the write, then
 * the claim taken, in one transaction (the write lock held throughout). */
static int set_pending_claimed(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                               const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                               const struct store_claim *claim) {
        sqlite3_stmt *st = d->stmt[STMT_SET_PENDING_CLAIMED];
        bool changed;
        int r;

        bind_pending(st, id, enrollment, expect_epoch, sealed, sealed_len, vault_len);
        sqlite3_bind_int64(st, 7, claim->owner);
        r = write_run(d, st, "store the pending vault");
        changed = r > 0;
        if (r > 0) {
                st = d->stmt[STMT_CLAIM];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, claim->owner);
                sqlite3_bind_int64(st, 3, u64_to_db(expect_epoch));
                sqlite3_bind_int64(st, 4, claim->ttl_ms);
                r = run(d, st, "claim the device");
                if (r == 0)
                        r = store_fail(d->s, -EIO, "Failed to claim device '%s'", id);
        }
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

static int sqlite_set_pending(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                              const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                              const struct store_claim *claim) {
        sqlite3_stmt *st = d->stmt[STMT_SET_PENDING];
        int r;

        if (claim)
                return set_pending_claimed(d, id, enrollment, expect_epoch, sealed, sealed_len, vault_len, claim);
        /* One statement: the compare-and-set and the write. */
        bind_pending(st, id, enrollment, expect_epoch, sealed, sealed_len, vault_len);
        r = run(d, st, "store the pending vault");
        if (r <= 0)
                return r;
        r = after_durable_write(d);
        return r < 0 ? r : 1;
}

static int sqlite_promote(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                          const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                          const struct store_claim *claim) {
        sqlite3_stmt *st = d->stmt[STMT_PROMOTE];
        bool changed;
        int r;

        /* The pending generation becomes committed, and the next one takes the old
         * committed generation's slot (its parity), overwriting it. */
        bind_cas(st, id, expect_epoch);
        sqlite3_bind_int64(st, 4, (int64_t) vault_len);
        sqlite3_bind_int64(st, 5, (int64_t) enrollment);
        sqlite3_bind_int64(st, 6, claim ? claim->owner : 0);
        sqlite3_bind_int64(st, 7, claim ? claim->ttl_ms : 0);
        r = write_run(d, st, "promote the pending vault");
        changed = r > 0;
        if (r > 0)
                r = vault_put(d, id, expect_epoch + 2, sealed, sealed_len);
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

static int sqlite_commit(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                         int64_t now, const struct store_claim *claim) {
        sqlite3_stmt *st = d->stmt[STMT_COMMIT];
        bool changed;
        int r;

        bind_cas(st, id, expect_epoch);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int64(st, 5, (int64_t) enrollment);
        sqlite3_bind_int64(st, 6, claim ? claim->owner : 0);
        r = write_run(d, st, "commit the pending vault");
        changed = r > 0;
        /* The old generation goes: secure_delete zeroes its pages (a later M3 reuses them). */
        if (r > 0) {
                st = d->stmt[STMT_VAULT_DROP];
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, u64_to_db(expect_epoch));
                r = run(d, st, "erase the old vault");
        }
        r = write_end(d, r, changed, false);
        return r < 0 ? r : changed;
}

static int sqlite_revoke(struct store_db *d, const char *id) {
        sqlite3_stmt *st = d->stmt[STMT_REVOKE];
        bool changed;
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = write_run(d, st, "revoke the device");
        changed = r > 0;
        if (r > 0)
                r = vault_clear(d, id);
        /* An operator revoking a device expects it to stay revoked. */
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

static int sqlite_release(struct store_db *d, const char *id, uint64_t epoch, const struct store_claim *claim) {
        sqlite3_stmt *st = d->stmt[STMT_RELEASE];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, claim->owner);
        sqlite3_bind_int64(st, 3, u64_to_db(epoch));
        r = run(d, st, "release the device");
        return r < 0 ? r : r > 0;
}

static int sqlite_add_failures(struct store_db *d, const char *id, uint32_t count, int64_t last) {
        sqlite3_stmt *st = d->stmt[STMT_FAILURE];
        int r;

        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, last);
        sqlite3_bind_int64(st, 3, count);
        r = run(d, st, "record the failure");
        return r < 0 ? r : r > 0;
}

static int sqlite_audit(struct store_db *d, int64_t now, const char *id, const char *peer, const char *outcome,
                        uint64_t epoch) {
        sqlite3_stmt *st = d->stmt[STMT_AUDIT];
        int r;

        sqlite3_bind_int64(st, 1, now);
        if (id)
                sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, u64_to_db(epoch));
        r = run(d, st, "write the audit record");
        return r < 0 ? r : 0;
}

static int sqlite_audit_summary(struct store_db *d, int64_t now, const char *outcome, uint64_t count) {
        sqlite3_stmt *st = d->stmt[STMT_SUMMARY];
        int r;

        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t) count);
        r = run(d, st, "write the audit summary");
        return r < 0 ? r : 0;
}

/* Rare and read-only: prepared per call, not one of the cached statements. */
static int sqlite_audit_list(struct store_db *d, const char *id, int64_t since,
                             int (*cb)(int64_t, const char *, const char *, const char *, int64_t, void *),
                             void *userdata) {
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(d->db, "SELECT time, device, peer, outcome, epoch FROM audit"
                                " WHERE time >= ?1 AND (?2 IS NULL OR device = ?2) ORDER BY time, id", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return fail_db(d, rc, "read the audit trail");
        sqlite3_bind_int64(st, 1, since);
        if (id)
                sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
                       (const char *) sqlite3_column_text(st, 2), (const char *) sqlite3_column_text(st, 3),
                       sqlite3_column_int64(st, 4), userdata);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = fail_db(d, rc, "read the audit trail");
        sqlite3_finalize(st);
        return r;
}

static int sqlite_audit_prune(struct store_db *d, int64_t before, unsigned limit) {
        int total = 0;

        for (int i = STMT_PRUNE_AUDIT; i <= STMT_PRUNE_SUMMARY && total < (int) limit; i++) {
                sqlite3_stmt *st = d->stmt[i];
                int r;

                sqlite3_bind_int64(st, 1, before);
                sqlite3_bind_int64(st, 2, (int64_t) limit - total);
                r = run(d, st, "prune the audit trail");
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}

static int sqlite_list(struct store_db *d, store_row_cb cb, void *userdata) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_LIST];
        struct store_row row;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                read_row(st, 0, 1, &row);
                r = cb(&row, userdata);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : fail_db(d, rc, "list the devices");
}

/* A statement that returns one integer. */
static int query_u64(struct store_db *d, int which, const char *what, uint64_t *ret) {
        sqlite3_stmt *st = d->stmt[which];
        int rc, r = 0;

        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = fail_db(d, rc, what);
        stmt_done(st);
        return r;
}

static int sqlite_count(struct store_db *d, uint64_t *ret) {
        return query_u64(d, STMT_COUNT, "count the devices", ret);
}

static int sqlite_data_version(struct store_db *d, uint64_t *ret) {
        return query_u64(d, STMT_DATA_VERSION, "read the data version", ret);
}

static int sqlite_shapes(struct store_db *d, store_shape_row_cb cb, void *userdata) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_SHAPES];
        int rc, r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                       sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
                       userdata);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : fail_db(d, rc, "count the device shapes");
}

static int aggregate_read_fold_write(struct store_db *d, sqlite3_stmt *st, const char *name, store_fold_fn fold,
                                     void *userdata, struct aggregate *a) {
        bool found;
        int rc, r;

        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        found = rc == SQLITE_ROW;
        if (found) {
                a->count = (uint64_t) sqlite3_column_int64(st, 0);
                a->sum = sqlite3_column_double(st, 1);
                a->min = sqlite3_column_double(st, 2);
                a->max = sqlite3_column_double(st, 3);
        }
        r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail_db(d, rc, "read the aggregate");
        stmt_done(st);
        if (r < 0)
                return r;
        r = fold(a, found, userdata);
        if (r < 0)
                return r;

        st = d->stmt[STMT_AGGREGATE_PUT];
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u64_to_db(a->count));
        sqlite3_bind_double(st, 3, a->sum);
        sqlite3_bind_double(st, 4, a->min);
        sqlite3_bind_double(st, 5, a->max);
        r = run(d, st, "write the aggregate");
        return r < 0 ? r : 0;
}

/* The read and the write in one transaction (the batch's, or else its own, whose write lock
 * BEGIN IMMEDIATE takes first). Inside a batch the answer is sent only once durable: the
 * batch ends with an fsync. */
static int sqlite_aggregate_update(struct store_db *d, const char *name, store_fold_fn fold, void *userdata,
                                   struct aggregate *a) {
        int r;

        r = write_begin(d);
        if (r < 0)
                return r;
        r = aggregate_read_fold_write(d, d->stmt[STMT_AGGREGATE_GET], name, fold, userdata, a);
        /* Only the batch's commit is synced for an aggregate. */
        r = write_end(d, r, false, false);
        if (r >= 0 && d->in_batch)
                d->batch_sync = true;
        return r < 0 ? r : 0;
}

static int sqlite_aggregate_list(struct store_db *d, store_aggregate_row_cb cb, void *userdata) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_AGGREGATE_LIST];
        int rc, r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb((const char *) sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                       sqlite3_column_double(st, 2), sqlite3_column_double(st, 3),
                       sqlite3_column_double(st, 4), userdata);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : fail_db(d, rc, "list the aggregates");
}

static int sqlite_batch_begin(struct store_db *d) {
        int r;

        if (d->in_batch)
                return store_fail(d->s, -EBUSY, "A batch is already open");
        r = run(d, d->stmt[STMT_BEGIN], "begin a batch");
        if (r < 0)
                return r;
        d->in_batch = true;
        d->batch_sync = d->batch_broken = false;
        return 0;
}

static int sqlite_batch_commit(struct store_db *d, bool durable) {
        bool sync = durable || d->batch_sync, broken = d->batch_broken;
        int r;

        if (!d->in_batch)
                return store_fail(d->s, -EINVAL, "No batch is open");
        d->in_batch = d->batch_sync = d->batch_broken = false;
        /* An I/O error or a full disk inside the batch makes SQLite roll it back on its own. */
        if (sqlite3_get_autocommit(d->db))
                return store_fail(d->s, -EIO, "The batch was rolled back after an earlier error");
        if (broken) {
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
                return store_fail(d->s, -EIO, "The batch was rolled back: one of its writes failed half done");
        }
        r = run(d, d->stmt[STMT_COMMIT_TX], "commit the batch");
        if (r < 0) {
                /* Keep the message of the failed COMMIT, not of the rollback. */
                if (!sqlite3_get_autocommit(d->db))
                        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
                return r;
        }
        return sync ? sync_wal(d) : 0;
}

static int sqlite_batch_rollback(struct store_db *d) {
        int r;

        if (!d->in_batch)
                return store_fail(d->s, -EINVAL, "No batch is open");
        d->in_batch = d->batch_sync = d->batch_broken = false;
        if (sqlite3_get_autocommit(d->db))
                return 0;
        r = run(d, d->stmt[STMT_ROLLBACK], "roll back the batch");
        return r < 0 ? r : 0;
}

/* STMT_LOOKUP's columns after the flag, the id and ROW_COLUMNS. */
#define LOOKUP_COMMITTED        (2 + ROW_NCOLUMNS)
#define LOOKUP_PENDING          (3 + ROW_NCOLUMNS)

/*
 * The lookup reads one row and one vault blob of it whatever the id: the one pick() names;
 * for an id that is not enrolled, the stand-in row's, with the same statement, so that a miss
 * in the id index costs what a device's row does. Only the picked blob's overflow pages are
 * read (sqlite3_column_blob() loads them).
 */
/* No shared back-off: one server per file, whose table in memory is enough. */
static int sqlite_lookup(struct store_db *d, const char *id, int64_t stand_in, struct store_backoff *backoff,
                         store_pick_fn pick, void *userdata, struct store_row *ret, bool *ret_found,
                         uint8_t *blob, size_t cap, size_t *ret_len) {
        _cleanup_(stmt_donep) sqlite3_stmt *st = d->stmt[STMT_LOOKUP];
        struct store_row row;
        size_t len = 0;
        bool found;
        int r, col;

        (void) backoff;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, stand_in > 0 ? stand_in : -1);
        r = step_row(d, st, "look up the device");
        if (r < 0)
                return r;
        found = sqlite3_column_int(st, 0) == 1;
        read_row(st, 1, 2, &row);
        col = pick(&row, found, userdata) == STORE_PICK_PENDING ? LOOKUP_PENDING : LOOKUP_COMMITTED;
        if (!is_null(st, col)) {
                const void *p = sqlite3_column_blob(st, col);

                len = (size_t) sqlite3_column_bytes(st, col);
                if (p && len <= cap)
                        memcpy(blob, p, len);
        }
        *ret = row;
        *ret_found = found;
        *ret_len = len;
        return 0;
}

/*
 * The bulk copy (store-backend.h). dump() reads inside one deferred transaction, which in WAL
 * mode is one snapshot that does not block the writers; a load is one batch, BEGIN IMMEDIATE
 * holding off every other writer until it ends.
 */
#define DUMP_DEVICES_SQL "SELECT d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM " ORDER BY d.id"
#define DUMP_COMMITTED  (1 + ROW_NCOLUMNS)
#define DUMP_PENDING    (2 + ROW_NCOLUMNS)
#define DUMP_AUDIT_SQL "SELECT time, device, peer, outcome, epoch FROM audit ORDER BY id"
#define DUMP_SUMMARY_SQL "SELECT time, outcome, count FROM audit_summary ORDER BY id"
#define LOAD_EMPTY_SQL \
        "SELECT EXISTS (SELECT 1 FROM device) OR EXISTS (SELECT 1 FROM audit)" \
        " OR EXISTS (SELECT 1 FROM audit_summary) OR EXISTS (SELECT 1 FROM aggregate)"
#define LOAD_DEVICE_SQL \
        "INSERT INTO device (" DEVICE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"

static struct store_raw_vault raw_vault(sqlite3_stmt *st, int col, bool present, int64_t epoch) {
        if (!present || is_null(st, col))
                return (struct store_raw_vault) { 0 };
        return (struct store_raw_vault) {
                .present = true,
                .epoch = (uint64_t) epoch,
                .blob = sqlite3_column_blob(st, col),
                .len = (size_t) sqlite3_column_bytes(st, col),
        };
}

/* One of dump()'s queries: each row to the callback of which (0 devices, 1 audit, 2 summaries). */
static int dump_query(struct store_db *d, const char *sql, int which, const struct store_dump_ops *cb,
                      void *userdata) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        struct store_raw_vault v[2];
        struct store_row row;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return fail_db(d, rc, "read the database");
        while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
                switch (which) {
                case 0:
                        read_row(st, 0, 1, &row);
                        v[0] = raw_vault(st, DUMP_COMMITTED, row.has_committed, row.committed_epoch);
                        v[1] = raw_vault(st, DUMP_PENDING, row.has_pending, row.pending_epoch);
                        r = cb->device(&row, v, userdata);
                        break;
                case 1:
                        r = cb->audit(sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
                                      (const char *) sqlite3_column_text(st, 2),
                                      (const char *) sqlite3_column_text(st, 3), sqlite3_column_int64(st, 4),
                                      userdata);
                        break;
                default:
                        r = cb->summary(sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
                                        sqlite3_column_int64(st, 2), userdata);
                        break;
                }
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : fail_db(d, rc, "read the database");
}

static int sqlite_dump(struct store_db *d, const struct store_dump_ops *cb, void *userdata) {
        int r;

        if (d->in_batch)
                return store_fail(d->s, -EBUSY, "A batch is open");
        r = exec(d, "BEGIN", "begin a read transaction");
        if (r < 0)
                return r;
        r = dump_query(d, DUMP_DEVICES_SQL, 0, cb, userdata);
        if (r >= 0)
                r = dump_query(d, DUMP_AUDIT_SQL, 1, cb, userdata);
        if (r >= 0)
                r = dump_query(d, DUMP_SUMMARY_SQL, 2, cb, userdata);
        if (r >= 0)
                r = sqlite_aggregate_list(d, cb->aggregate, userdata);
        if (r >= 0)
                return exec(d, "COMMIT", "end the read transaction");
        if (!sqlite3_get_autocommit(d->db))
                sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int sqlite_load_begin(struct store_db *d) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int rc, r;

        r = sqlite_batch_begin(d);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(d->db, LOAD_EMPTY_SQL, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                r = fail_db(d, rc, "read the database");
        else if (sqlite3_column_int(st, 0) != 0)
                r = -ENOTEMPTY;
        if (r < 0)
                (void) sqlite_batch_rollback(d);
        return r;
}

static int sqlite_load_device(struct store_db *d, const struct store_device *dev,
                              const struct store_raw_vault vaults[2]) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        bool changed = false;
        int rc, r;

        rc = sqlite3_prepare_v2(d->db, LOAD_DEVICE_SQL, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return fail_db(d, rc, "add the device");
        sqlite3_bind_text(st, 1, dev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, dev->status == STORE_ACTIVE ? "active" : "revoked", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, dev->profile);
        sqlite3_bind_int(st, 4, dev->n);
        sqlite3_bind_int(st, 5, dev->m);
        sqlite3_bind_int(st, 6, dev->p);
        sqlite3_bind_int64(st, 7, u64_to_db(dev->epoch));
        sqlite3_bind_int64(st, 8, dev->created);
        sqlite3_bind_int64(st, 9, dev->last_success);
        sqlite3_bind_int64(st, 10, dev->last_failure);
        sqlite3_bind_int64(st, 11, dev->failures);
        sqlite3_bind_int64(st, 12, u64_to_db(dev->enrollment));
        sqlite3_bind_int(st, 13, dev->kex);
        r = write_run(d, st, "add the device");
        changed = r > 0;
        for (int i = 0; r >= 0 && i < 2; i++)
                if (vaults[i].present)
                        r = vault_put(d, dev->id, vaults[i].epoch, vaults[i].blob, vaults[i].len);
        r = write_end(d, r, changed, true);
        return r < 0 ? r : 0;
}

static bool sqlite_claims(const char *path) {
        return !store_path_is_postgresql(path);
}

static const struct store_ops sqlite_ops = {
        .open = sqlite_open,
        .close = sqlite_close,
        .serving_lock = sqlite_serving_lock,
        .keycheck_get = sqlite_keycheck_get,
        .get = sqlite_get,
        .lookup = sqlite_lookup,
        .probe = sqlite_probe,
        .enroll = sqlite_enroll,
        .set_pending = sqlite_set_pending,
        .promote = sqlite_promote,
        .commit = sqlite_commit,
        .release = sqlite_release,
        .revoke = sqlite_revoke,
        .add_failures = sqlite_add_failures,
        .audit = sqlite_audit,
        .audit_summary = sqlite_audit_summary,
        .audit_prune = sqlite_audit_prune,
        .audit_list = sqlite_audit_list,
        .list = sqlite_list,
        .count = sqlite_count,
        .shapes = sqlite_shapes,
        .aggregate_update = sqlite_aggregate_update,
        .aggregate_list = sqlite_aggregate_list,
        .batch_begin = sqlite_batch_begin,
        .batch_commit = sqlite_batch_commit,
        .batch_rollback = sqlite_batch_rollback,
        .data_version = sqlite_data_version,
        .dump = sqlite_dump,
        .load_begin = sqlite_load_begin,
        .load_device = sqlite_load_device,
};

const struct store_backend store_backend_sqlite = {
        .name = "SQLite",
        .claims = sqlite_claims,
        .ops = &sqlite_ops,
};
