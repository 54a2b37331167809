/* SPDX-License-Identifier: MIT */

/*
 * The authserver store on real SQLite files in a private temporary directory, or on the back
 * end SV_TEST_STORE_DB names: a --db value whose "%s", if any, is replaced by each test's
 * store name ("wrongkey" for wrongkey.db), so that every test gets a store of its own (say
 * SV_TEST_STORE_DB='postgresql:///sv_test_%s', the databases made empty beforehand). The
 * tests that look into the SQLite file itself (its SQL, its WAL, secure_delete, the VFS
 * counts, schema upgrades of old files) run only on SQLite, the others on every back end.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#ifdef HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "profile.h"
#include "store.h"
#include "store-crypto.h"
#include "store-plain.h"
#include "vfs-count.h"

#define VAULT_LEN(n, m) ((size_t) (n) * (m))

static char tmpdir[256];
static const uint8_t key1[32] = { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                  0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                  0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x12 };
static const uint8_t key2[32] = { 0x22 };

static const char *path_of(const char *name) {
        static char buf[512];

        snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
        return buf;
}

/* The store test_db names, or NULL for SQLite files. */
static const char *test_db(void) {
        const char *v = getenv("SV_TEST_STORE_DB");

        return v && *v ? v : NULL;
}

/* The store name of a test's name: [a-z0-9] kept, ".db" dropped, the rest '_'. */
static const char *store_name(const char *name) {
        static char base[64];
        size_t i;

        for (i = 0; name[i] && i < sizeof(base) - 1 && strcmp(name + i, ".db") != 0; i++)
                base[i] = (char) ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ?
                                  name[i] : '_');
        base[i] = 0;
        return base;
}

/* A PostgreSQL URI without "%s" (tests/store/pg.test): one database, each store a schema of
 * its own in it; the test_pg_* tests then also reach into it with SQL. */
static const char *pg_base(void) {
        const char *t = test_db();

        return t && store_path_is_postgresql(t) && !strstr(t, "%s") ? t : NULL;
}

#ifdef HAVE_LIBPQ
/* Runs sql on the test database, as the search path of store name (NULL: none); must: the
 * test fails unless it succeeds, else *ret_ok tells. */
static PGresult *pg_exec(const char *name, const char *sql, bool must, bool *ret_ok) {
        PGconn *c = PQconnectdb(pg_base());
        PGresult *res;
        char set[128];
        bool ok;

        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        PQclear(PQexec(c, "SET client_min_messages TO warning"));
        if (name) {
                snprintf(set, sizeof(set), "SET search_path TO %s", store_name(name));
                PQclear(PQexec(c, set));
        }
        res = PQexec(c, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        ck_assert_msg(ok || !must, "%s: %s", sql, PQerrorMessage(c));
        if (ret_ok)
                *ret_ok = ok;
        PQfinish(c);
        return res;
}

static PGresult *pg_raw(const char *name, const char *sql) {
        return pg_exec(name, sql, true, NULL);
}

static int64_t pg_int(const char *name, const char *sql) {
        PGresult *res = pg_raw(name, sql);
        int64_t v;

        ck_assert_int_eq(PQntuples(res), 1);
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return v;
}
#endif

/* The --db value of the store name: SV_TEST_STORE_DB's, or a file in tmpdir. */
static const char *db_of(const char *name) {
        static char buf[1024];
        const char *t = test_db(), *at, *base = store_name(name);

        if (!t)
                return path_of(name);
#ifdef HAVE_LIBPQ
        if (pg_base()) {
                char sql[128];

                snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", base);
                PQclear(pg_raw(NULL, sql));
                ck_assert(snprintf(buf, sizeof(buf), "%s%soptions=-csearch_path%%3D%s", t,
                                   strchr(t, '?') ? "&" : "?", base) < (int) sizeof(buf));
                return buf;
        }
#endif
        at = strstr(t, "%s");
        if (!at)
                return t;
        ck_assert(snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (at - t), t, base, at + 2) < (int) sizeof(buf));
        return buf;
}

static struct store *open_new(const char *name) {
        struct store *s = NULL;
        int r = store_open(db_of(name), key1, STORE_CREATE, &s);

        ck_assert_msg(r == 0, "store_open: %d %s", r, store_last_error(NULL));
        return s;
}

static struct store *reopen(const char *name, const uint8_t *key) {
        struct store *s = NULL;
        int r = store_open(db_of(name), key, 0, &s);

        ck_assert_msg(r == 0, "store_open: %d %s", r, store_last_error(NULL));
        return s;
}

static void fill(uint8_t *v, size_t len, unsigned seed) {
        for (size_t i = 0; i < len; i++)
                v[i] = (uint8_t) (seed * 131 + i * 7 + (i >> 8) + 1);
}

static struct store_device mkdev(const char *id, uint16_t n, uint8_t m, uint8_t p, uint64_t epoch) {
        struct store_device d = { .profile = 1, .n = n, .m = m, .p = p, .epoch = epoch };

        snprintf(d.id, sizeof(d.id), "%s", id);
        return d;
}

/* Enrolls id with n=64, m=16, p=8 and the vault of seed. */
static void enroll(struct store *s, const char *id, uint64_t epoch, unsigned seed) {
        struct store_device d = mkdev(id, 64, 16, 8, epoch);
        uint8_t v[64 * 16];
        int r;

        fill(v, sizeof(v), seed);
        r = store_enroll(s, &d, v, sizeof(v), 1000);
        ck_assert_msg(r == 0, "enroll %s: %d %s", id, r, store_last_error(s));
}

/* The enrollment token of id as store_get() reports it, or 0 if it cannot be read (a
 * missing or invalid id: the call under test then fails on that before the token matters). */
static uint64_t enr(struct store *s, const char *id) {
        struct store_device d;

        return id && store_get(s, id, &d, NULL, NULL, 0) == 0 ? d.enrollment : 0;
}

static void assert_vault(struct store *s, const char *id, unsigned seed, int pending_seed) {
        uint8_t c[64 * 16], p[64 * 16], want[64 * 16];
        struct store_device d;
        int r;

        r = store_get(s, id, &d, c, p, sizeof(c));
        ck_assert_msg(r == 0, "get %s: %d %s", id, r, store_last_error(s));
        fill(want, sizeof(want), seed);
        ck_assert_mem_eq(c, want, sizeof(want));
        ck_assert(d.has_pending == (pending_seed >= 0));
        if (pending_seed >= 0) {
                fill(want, sizeof(want), (unsigned) pending_seed);
                ck_assert_mem_eq(p, want, sizeof(want));
        }
}

static void assert_committed(struct store *s, const char *id, unsigned seed) {
        uint8_t c[64 * 16], want[64 * 16];
        struct store_device d;
        int r;

        r = store_get(s, id, &d, c, NULL, sizeof(c));
        ck_assert_msg(r == 0, "get %s: %d %s", id, r, store_last_error(s));
        fill(want, sizeof(want), seed);
        ck_assert_mem_eq(c, want, sizeof(want));
}

/*
 * The tests that reach into a store with SQL (raw_*: the same text on both back ends) run on
 * SQLite files and on a PostgreSQL URI without "%s" (pg_base(): a schema per store, which the
 * test can reach); with any other SV_TEST_STORE_DB they are not run.
 */
static bool raw_reachable(void) {
        return !test_db() || pg_base();
}

static void raw_exec(const char *name, const char *sql) {
        sqlite3 *db;
        char *err = NULL;

#ifdef HAVE_LIBPQ
        if (pg_base()) {
                PQclear(pg_raw(name, sql));
                return;
        }
#endif
        ck_assert_int_eq(sqlite3_open(path_of(name), &db), SQLITE_OK);
        ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err);
        sqlite3_close(db);
}

/* Whether sql succeeds (a statement the schema should refuse). */
static bool raw_try(const char *name, const char *sql) {
        sqlite3 *db;
        bool ok;

#ifdef HAVE_LIBPQ
        if (pg_base()) {
                PQclear(pg_exec(name, sql, false, &ok));
                return ok;
        }
#endif
        ck_assert_int_eq(sqlite3_open(path_of(name), &db), SQLITE_OK);
        ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(db);
        return ok;
}

static int64_t raw_int(const char *name, const char *sql) {
        sqlite3_stmt *st;
        sqlite3 *db;
        int64_t v;

#ifdef HAVE_LIBPQ
        if (pg_base())
                return pg_int(name, sql);
#endif
        ck_assert_int_eq(sqlite3_open(path_of(name), &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

/* The vault row of id's committed generation, or of its pending one (schema 6). */
#define SLOT_COMMITTED  "d.num * 2 + (d.epoch & 1)"
#define SLOT_PENDING    "d.num * 2 + 1 - (d.epoch & 1)"

/* Flips one byte of a vault blob of one device, as an attacker with the file would. */
static void raw_flip(const char *name, const char *id, bool pending, size_t at) {
        char sql[256];
        sqlite3_stmt *st;
        uint8_t buf[8192];
        sqlite3 *db;
        int len;

        #ifdef HAVE_LIBPQ
        if (pg_base()) {
                PGresult *res;

                snprintf(sql, sizeof(sql), "UPDATE vault v SET blob = set_byte(v.blob, %zu, get_byte(v.blob, %zu) # 1)"
                         " FROM device d WHERE v.slot = %s AND d.id = '%s'", at, at,
                         pending ? SLOT_PENDING : SLOT_COMMITTED, id);
                res = pg_raw(name, sql);
                ck_assert_str_eq(PQcmdTuples(res), "1");
                PQclear(res);
                return;
        }
#endif
        ck_assert_int_eq(sqlite3_open(path_of(name), &db), SQLITE_OK);
        snprintf(sql, sizeof(sql), "SELECT v.blob, v.slot FROM vault v JOIN device d ON v.slot = %s WHERE d.id = ?1",
                 pending ? SLOT_PENDING : SLOT_COMMITTED);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        len = sqlite3_column_bytes(st, 0);
        ck_assert(len > 0 && (size_t) len <= sizeof(buf) && at < (size_t) len);
        memcpy(buf, sqlite3_column_blob(st, 0), (size_t) len);
        snprintf(sql, sizeof(sql), "UPDATE vault SET blob = ?2 WHERE slot = %lld",
                 (long long) sqlite3_column_int64(st, 1));
        sqlite3_finalize(st);
        buf[at] ^= 0x01;
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_blob(st, 2, buf, len, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
        ck_assert_int_eq(sqlite3_changes(db), 1);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

/*
 * Turns a store of this version into one as schema 5 wrote it: both vault generations in the
 * device row, whose table is the literal text of schema 5. The older schemas' tests start from
 * here and take away what their version did not have yet.
 */
static void make_v5(const char *name) {
        raw_exec(name,
                 "BEGIN;"
                 "CREATE TABLE device_5 ( id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL CHECK (status IN "
                 "('active', 'revoked')), profile INTEGER NOT NULL CHECK (profile IN (1, 2)), n INTEGER NOT NULL "
                 "CHECK (n BETWEEN 8 AND 4096), m INTEGER NOT NULL CHECK (m IN (16, 32)), p INTEGER NOT NULL "
                 "CHECK (p BETWEEN 1 AND 64 AND 2 * p <= n), epoch INTEGER NOT NULL, created INTEGER NOT NULL, "
                 "last_success INTEGER NOT NULL DEFAULT 0, last_failure INTEGER NOT NULL DEFAULT 0, failures "
                 "INTEGER NOT NULL DEFAULT 0, enrollment INTEGER NOT NULL DEFAULT 0, kex INTEGER NOT NULL DEFAULT "
                 "0 CHECK (kex IN (0, 1) AND (kex = 0 OR profile = 1)), vault BLOB NOT NULL, pending BLOB);"
                 "INSERT INTO device_5 SELECT d.id, d.status, d.profile, d.n, d.m, d.p, d.epoch, d.created, "
                 "d.last_success, d.last_failure, d.failures, d.enrollment, d.kex, coalesce(c.blob, x''), p.blob "
                 "FROM device d LEFT JOIN vault c ON c.slot = " SLOT_COMMITTED " LEFT JOIN vault p ON p.slot = "
                 SLOT_PENDING " ORDER BY d.num;"
                 "DROP TABLE device; DROP TABLE vault;"
                 "ALTER TABLE device_5 RENAME TO device;"
                 "CREATE INDEX device_shape ON device (status, profile, n, m, p);"
                 "PRAGMA user_version = 5;"
                 "COMMIT");
        ck_assert_int_eq(raw_int(name, "SELECT count(*) FROM sqlite_master WHERE name = 'vault'"), 0);
        ck_assert_int_eq(raw_int(name, "SELECT count(*) FROM pragma_table_info('device') WHERE name IN "
                                 "('vault', 'pending')"), 2);
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode) {
        int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
}

START_TEST(test_create_reopen) {
        struct store *s = open_new("create.db");
        struct stat st;

        enroll(s, "dev-1", 0, 1);
        /* The write-ahead log inherits the database's private mode. */
        ck_assert_int_eq(stat(path_of("create.db-wal"), &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        store_close(s);
        ck_assert_int_eq(stat(path_of("create.db"), &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(raw_int("create.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("create.db", "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);

        s = reopen("create.db", key1);
        assert_vault(s, "dev-1", 1, -1);
        store_close(s);
        /* Opening with the create flag does not touch an existing store. */
        s = open_new("create.db");
        assert_vault(s, "dev-1", 1, -1);
        store_close(s);
        store_close(NULL);
}
END_TEST

START_TEST(test_schema_newer) {
        struct store *s = open_new("newer.db");
        char sql[64];

        store_close(s);
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
        raw_exec("newer.db", sql);
        s = NULL;
        ck_assert_int_eq(store_open(path_of("newer.db"), key1, 0, &s), -EPROTONOSUPPORT);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(strstr(store_last_error(NULL), "newer"));
        ck_assert_int_eq(store_open(path_of("newer.db"), key1, STORE_CREATE, &s), -EPROTONOSUPPORT);
}
END_TEST

START_TEST(test_garbage) {
        struct store *s = NULL;
        char junk[4096];

        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = "this is not a database\n"[i % 23];
        write_file("junk.db", junk, sizeof(junk), 0600);
        ck_assert_int_eq(store_open(path_of("junk.db"), key1, 0, &s), -EBADMSG);
        ck_assert_int_eq(store_open(path_of("junk.db"), key1, STORE_CREATE, &s), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(store_last_error(NULL), "junk.db"));
        write_file("short.db", "hello\n", 6, 0600);
        ck_assert_int_eq(store_open(path_of("short.db"), key1, STORE_CREATE, &s), -EBADMSG);
        /* A SQLite database of some other program. */
        raw_exec("other.db", "CREATE TABLE t (x)");
        ck_assert_int_eq(store_open(path_of("other.db"), key1, 0, &s), -EBADMSG);
        ck_assert_int_eq(store_open(path_of("other.db"), key1, STORE_CREATE, &s), -EBADMSG);
        ck_assert_ptr_null(s);
        /* The file is left as it was. */
        ck_assert_int_eq(raw_int("other.db", "SELECT count(*) FROM sqlite_master"), 1);
}
END_TEST

START_TEST(test_missing) {
        struct store *s = NULL;

        ck_assert_int_eq(store_open(path_of("missing.db"), key1, 0, &s), -ENOENT);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(access(path_of("missing.db"), F_OK), -1);
        ck_assert_int_eq(store_open(path_of("nodir/x.db"), key1, STORE_CREATE, &s), -ENOENT);
}
END_TEST

START_TEST(test_master_key_create_load) {
        uint8_t k[32], k2[32], zero[32] = { 0 };
        struct stat st;

        ck_assert_int_eq(store_master_key_create(path_of("master.key")), 0);
        ck_assert_int_eq(stat(path_of("master.key"), &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(st.st_size, 32);
        ck_assert_int_eq(store_master_key_create(path_of("master.key")), -EEXIST);
        ck_assert_int_eq(store_master_key_load(path_of("master.key"), k), 0);
        ck_assert_int_eq(store_master_key_load(path_of("master.key"), k2), 0);
        ck_assert_mem_eq(k, k2, 32);
        ck_assert(memcmp(k, zero, 32) != 0);
        ck_assert_int_eq(store_master_key_load(path_of("no.key"), k), -ENOENT);
        ck_assert_int_eq(mkfifo(path_of("fifo.key"), 0600), 0);
        ck_assert_int_eq(store_master_key_load(path_of("fifo.key"), k), -EINVAL);
}
END_TEST

START_TEST(test_master_key_permissions) {
        uint8_t k[32];

        write_file("open.key", key1, 32, 0644);
        ck_assert_int_eq(store_master_key_load(path_of("open.key"), k), -EPERM);
        ck_assert_ptr_nonnull(strstr(store_last_error(NULL), "group or others"));
        ck_assert_int_eq(chmod(path_of("open.key"), 0640), 0);
        ck_assert_int_eq(store_master_key_load(path_of("open.key"), k), -EPERM);
        ck_assert_int_eq(chmod(path_of("open.key"), 0604), 0);
        ck_assert_int_eq(store_master_key_load(path_of("open.key"), k), -EPERM);
        ck_assert_int_eq(chmod(path_of("open.key"), 0400), 0);
        ck_assert_int_eq(store_master_key_load(path_of("open.key"), k), 0);
        ck_assert_mem_eq(k, key1, 32);
}
END_TEST

START_TEST(test_master_key_hex) {
        static const char hex[] = "00112233445566778899aAbBcCdDeEfF"
                                  "0123456789ABCDEFfedcba9876543210";
        static const uint8_t want[32] = {
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
        };
        char buf[80];
        uint8_t k[32];

        write_file("hex.key", hex, 64, 0600);
        ck_assert_int_eq(store_master_key_load(path_of("hex.key"), k), 0);
        ck_assert_mem_eq(k, want, 32);
        snprintf(buf, sizeof(buf), "%s\n", hex);
        write_file("hexnl.key", buf, 65, 0600);
        memset(k, 0, sizeof(k));
        ck_assert_int_eq(store_master_key_load(path_of("hexnl.key"), k), 0);
        ck_assert_mem_eq(k, want, 32);

        write_file("short.key", hex, 63, 0600);
        ck_assert_int_eq(store_master_key_load(path_of("short.key"), k), -EBADMSG);
        memcpy(buf, hex, 64);
        buf[17] = 'g';
        write_file("badhex.key", buf, 64, 0600);
        ck_assert_int_eq(store_master_key_load(path_of("badhex.key"), k), -EBADMSG);
        memcpy(buf, hex, 64);
        buf[64] = '\r';
        write_file("crlf.key", buf, 65, 0600);
        ck_assert_int_eq(store_master_key_load(path_of("crlf.key"), k), -EBADMSG);
        write_file("long.key", hex, 33, 0600);
        ck_assert_int_eq(store_master_key_load(path_of("long.key"), k), -EBADMSG);
        memset(buf, 'a', sizeof(buf));
        write_file("huge.key", buf, sizeof(buf), 0600);
        ck_assert_int_eq(store_master_key_load(path_of("huge.key"), k), -EBADMSG);
        /* Failures leave the output alone. */
        ck_assert_mem_eq(k, want, 32);
}
END_TEST

START_TEST(test_enroll_get) {
        struct store *s = open_new("get.db");
        struct store_device d = mkdev("sensor-0042", 256, 32, 16, 0), got;
        uint8_t *v = malloc(256 * 32), *c = malloc(256 * 32), *p = malloc(256 * 32);

        fill(v, 256 * 32, 7);
        ck_assert_int_eq(store_enroll(s, &d, v, 256 * 32, 1234), 0);
        memset(p, 0xaa, 256 * 32);
        ck_assert_int_eq(store_get(s, "sensor-0042", &got, c, p, 256 * 32), 0);
        ck_assert_mem_eq(c, v, 256 * 32);
        ck_assert_str_eq(got.id, "sensor-0042");
        ck_assert_int_eq(got.status, STORE_ACTIVE);
        ck_assert_int_eq(got.profile, 1);
        ck_assert_int_eq(got.n, 256);
        ck_assert_int_eq(got.m, 32);
        ck_assert_int_eq(got.p, 16);
        ck_assert_uint_eq(got.epoch, 0);
        ck_assert(!got.has_pending);
        ck_assert_int_eq(got.created, 1234);
        ck_assert_int_eq(got.last_success, 0);
        ck_assert_int_eq(got.failures, 0);
        /* Without a pending vault its buffer is not written. */
        for (size_t i = 0; i < 256 * 32; i++)
                ck_assert_uint_eq(p[i], 0xaa);

        /* Metadata alone, without decrypting anything. */
        memset(&got, 0, sizeof(got));
        ck_assert_int_eq(store_get(s, "sensor-0042", &got, NULL, NULL, 0), 0);
        ck_assert_int_eq(got.n, 256);
        ck_assert_int_eq(store_get(s, "sensor-0042", &got, c, NULL, 256 * 32 - 1), -ENOBUFS);
        ck_assert_int_eq(store_get(s, "sensor-0043", &got, c, NULL, 256 * 32), -ENOENT);
        ck_assert_ptr_nonnull(strstr(store_last_error(s), "sensor-0043"));

        /* Paper profile, smallest vault. */
        d = mkdev("p", 8, 16, 4, 3);
        d.profile = 2;
        ck_assert_int_eq(store_enroll(s, &d, v, 8 * 16, 1), 0);
        ck_assert_int_eq(store_get(s, "p", &got, c, NULL, 8 * 16), 0);
        ck_assert_mem_eq(c, v, 8 * 16);
        ck_assert_int_eq(got.profile, 2);
        ck_assert_uint_eq(got.epoch, 3);
        store_close(s);
        free(v);
        free(c);
        free(p);
}
END_TEST

START_TEST(test_enroll_duplicate) {
        struct store *s = open_new("dup.db");
        struct store_device d = mkdev("dev", 64, 16, 8, 0);
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        fill(v, sizeof(v), 2);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 5), -EEXIST);
        assert_vault(s, "dev", 1, -1);
        store_close(s);
}
END_TEST

START_TEST(test_bad_input) {
        static const char *const bad_ids[] = {
                "", "a b", "a/b", "dev\n", "caf\xc3\xa9", "x;DROP TABLE device",
                "12345678901234567890123456789012345678901234567890123456789012345",
        };
        static const struct { uint8_t profile; uint16_t n; uint8_t m, p; } bad[] = {
                { 0, 64, 16, 8 }, { 3, 64, 16, 8 }, { 1, 7, 16, 3 }, { 1, 4097, 16, 8 },
                { 1, 64, 24, 8 }, { 1, 64, 0, 8 }, { 1, 64, 16, 0 }, { 1, 256, 16, 65 },
                { 1, 8, 16, 5 },
        };
        struct store *s = open_new("bad.db");
        struct store_device d, got;
        uint8_t v[64 * 16];
        uint64_t count = 99;

        fill(v, sizeof(v), 1);
        for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
                if (strlen(bad_ids[i]) <= STORE_ID_MAX) {
                        d = mkdev(bad_ids[i], 64, 16, 8, 0);
                        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 0), -EINVAL);
                }
                ck_assert_int_eq(store_get(s, bad_ids[i], &got, NULL, NULL, 0), -EINVAL);
                ck_assert_int_eq(plain_set_pending(s, bad_ids[i], enr(s, bad_ids[i]), 0, v, sizeof(v)), -EINVAL);
                ck_assert_int_eq(store_audit(s, 0, bad_ids[i], "peer", "decoy", 0), -EINVAL);
        }
        ck_assert_int_eq(store_get(s, NULL, &got, NULL, NULL, 0), -EINVAL);
        /* An id field without its terminator. */
        d = mkdev("x", 64, 16, 8, 0);
        memset(d.id, 'a', sizeof(d.id));
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 0), -EINVAL);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                d = mkdev("dev", bad[i].n, bad[i].m, bad[i].p, 0);
                d.profile = bad[i].profile;
                ck_assert_msg(store_enroll(s, &d, v, VAULT_LEN(bad[i].n, bad[i].m), 0) == -EINVAL,
                              "case %zu", i);
        }
        d = mkdev("dev", 64, 16, 8, 0);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v) - 16, 0), -EINVAL);
        ck_assert_int_eq(store_enroll(s, &d, NULL, sizeof(v), 0), -EINVAL);
        ck_assert_int_eq(store_count(s, &count), 0);
        ck_assert_uint_eq(count, 0);

        /* The widest valid id, and the smallest valid parameters. */
        d = mkdev("Az09._:-Az09._:-Az09._:-Az09._:-Az09._:-Az09._:-Az09._:-Az09._:-", 8, 16, 4, 0);
        ck_assert_int_eq(store_enroll(s, &d, v, 8 * 16, 0), 0);
        /* A pending vault of the wrong size for the row. */
        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, 8 * 16), -EINVAL);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, 100), -EINVAL);
        assert_vault(s, "dev", 1, -1);
        ck_assert_int_eq(store_audit(s, 0, "dev", "bad peer", "ok", 0), -EINVAL);
        ck_assert_int_eq(store_audit(s, 0, "dev", "peer", "", 0), -EINVAL);
        ck_assert_int_eq(store_audit(s, 0, "dev", NULL, "ok", 0), -EINVAL);
        store_close(s);
}
END_TEST

static void next_vault(unsigned seed, uint8_t v[64 * 16]) {
        fill(v, 64 * 16, seed);
}

START_TEST(test_compare_and_set) {
        struct store *s = open_new("cas.db");
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_record_failure(s, "dev", 50), 0);
        ck_assert_int_eq(store_record_failure(s, "dev", 60), 0);
        ck_assert_int_eq(store_record_failure(s, "nobody", 60), -ENOENT);

        /* Two sessions verified M3 against generation 0: the later pending vault wins... */
        next_vault(2, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), 0);
        assert_vault(s, "dev", 1, 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), 0);
        assert_vault(s, "dev", 1, 3);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 0);
        ck_assert_uint_eq(d.failures, 2);
        ck_assert_int_eq(d.last_failure, 60);

        /* ...and only one of them commits. */
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 0, 100), 0);
        assert_vault(s, "dev", 3, -1);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 0, 200), -ESTALE);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 1);
        ck_assert_int_eq(d.last_success, 100);
        ck_assert_uint_eq(d.failures, 0);
        ck_assert(!d.has_pending);
        assert_vault(s, "dev", 3, -1);

        /* A stale set_pending and a commit without pending change nothing. */
        next_vault(4, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 2, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 1, 300), -ESTALE);
        ck_assert_int_eq(store_commit(s, "ghost", enr(s, "ghost"), 1, 300), -ENOENT);
        ck_assert_int_eq(plain_set_pending(s, "ghost", enr(s, "ghost"), 1, v, sizeof(v)), -ENOENT);
        assert_vault(s, "dev", 3, -1);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 1);
        ck_assert_int_eq(d.last_success, 100);

        /* A late M5 of a session from generation 0 cannot commit the next pending vault. */
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 1, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 0, 300), -ESTALE);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 1);
        assert_vault(s, "dev", 3, 4);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 1, 400), 0);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 2);
        assert_vault(s, "dev", 4, -1);
        store_close(s);
}
END_TEST

START_TEST(test_promote) {
        struct store *s = open_new("promote.db");
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "dev", 5, 1);
        next_vault(6, v);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), 0);
        /* The device comes back with epoch 6 (M4 arrived, M5 was lost). */
        next_vault(7, v);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), 0);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 6);
        assert_vault(s, "dev", 6, 7);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 5, 1), -ESTALE);
        assert_vault(s, "dev", 6, 7);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 6, 1), 0);
        assert_vault(s, "dev", 7, -1);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 7);
        store_close(s);
}
END_TEST

/* Two servers on one database (store_set_claim()): one session per device past M3, in the
 * device row. a and b are two processes' handles (owners 1 and 2). */
START_TEST(test_claims) {
        struct store *a = open_new("claims.db"), *b = reopen("claims.db", key1), *admin = reopen("claims.db", key1);
        uint8_t v[64 * 16];
        uint64_t e;

        enroll(a, "dev", 0, 1);
        e = enr(a, "dev");
        store_set_claim(a, 1, 60000);
        store_set_claim(b, 2, 60000);
        /* a's session past M3 claims the device: b's session of the same epoch changes nothing. */
        next_vault(2, v);
        ck_assert_int_eq(plain_set_pending(a, "dev", e, 0, v, sizeof(v)), 0);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 0, v, sizeof(v)), -ESTALE);
        ck_assert_ptr_nonnull(strstr(store_last_error(b), "another server"));
        assert_vault(admin, "dev", 1, 2);
        /* Only a commits a's session, and releases the claim. */
        ck_assert_int_eq(store_commit(b, "dev", e, 0, 5), -ESTALE);
        ck_assert_int_eq(store_commit(a, "dev", e, 0, 5), 0);
        assert_vault(admin, "dev", 2, -1);
        /* Free again: b's session claims it (a handle without claims is not held back by it). */
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 1, v, sizeof(v)), 0);
        assert_vault(admin, "dev", 2, 3);
        /* The device proved the vault b's session sent (its M5 was lost): a's session takes
         * the claim over by promoting, for 1 ms only. */
        store_set_claim(a, 1, 1);
        next_vault(4, v);
        ck_assert_int_eq(plain_promote_and_set_pending(a, "dev", e, 1, v, sizeof(v)), 0);
        assert_vault(admin, "dev", 3, 4);
        /* b's late M5 cannot commit, nor can b commit a's session. */
        ck_assert_int_eq(store_commit(b, "dev", e, 1, 6), -ESTALE);
        ck_assert_int_eq(store_commit(b, "dev", e, 2, 6), -ESTALE);
        ck_assert_ptr_nonnull(strstr(store_last_error(b), "taken over"));
        /* a's claim expired: b's session of epoch 2 takes it, and a can no longer commit. */
        usleep(50 * 1000);
        next_vault(5, v);
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 2, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(a, "dev", e, 2, 7), -ESTALE);
        ck_assert_int_eq(store_commit(b, "dev", e, 2, 7), 0);
        assert_vault(admin, "dev", 5, -1);
        /* A session that ended uncommitted releases its claim (its owner's, of its epoch only). */
        store_set_claim(a, 1, 60000);
        next_vault(6, v);
        ck_assert_int_eq(plain_set_pending(a, "dev", e, 3, v, sizeof(v)), 0);
        ck_assert_int_eq(store_release_claim(b, "dev", 3), 0);
        ck_assert_int_eq(store_release_claim(a, "dev", 2), 0);
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 3, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(store_release_claim(a, "dev", 3), 0);
        next_vault(7, v);
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 3, v, sizeof(v)), 0);
        assert_vault(admin, "dev", 5, 7);
        store_close(admin);
        store_close(a);
        store_close(b);
}
END_TEST

START_TEST(test_wrong_master_key) {
        struct store *s = open_new("wrongkey.db");
        uint8_t c[64 * 16];
        struct store_device d;

        enroll(s, "dev", 0, 1);
        store_close(s);
        /* The key check refuses a wrong key at open, before any vault is touched. */
        s = NULL;
        ck_assert_int_eq(store_open(db_of("wrongkey.db"), key2, 0, &s), -EKEYREJECTED);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(strstr(store_last_error(NULL), "master key does not open"));
        s = reopen("wrongkey.db", key1);
        ck_assert_int_eq(store_get(s, "dev", &d, c, NULL, sizeof(c)), 0);
        store_close(s);
}
END_TEST

static void assert_bad(struct store *s, const char *id, bool with_pending) {
        uint8_t c[64 * 16], p[64 * 16], v[64 * 16];
        struct store_device d;

        memset(&d, 0x5a, sizeof(d));
        ck_assert_int_eq(store_get(s, id, &d, c, with_pending ? p : NULL, sizeof(c)), -EBADMSG);
        ck_assert_uint_eq(d.n, 0x5a5a);
        /* No unauthenticated plaintext is left behind. */
        for (unsigned seed = 0; seed < 16; seed++) {
                next_vault(seed, v);
                ck_assert(memcmp(c, v, 16) != 0);
        }
}

START_TEST(test_tamper) {
        struct store *s = open_new("tamper.db");
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        enroll(s, "other", 0, 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "other", enr(s, "other"), 0, v, sizeof(v)), 0);
        store_close(s);
        raw_flip("tamper.db", "dev", false, 12 + 100);         /* ciphertext */
        raw_flip("tamper.db", "other", true, 12 + 64 * 16 + 3); /* tag */
        s = reopen("tamper.db", key1);
        assert_bad(s, "dev", false);
        assert_bad(s, "other", true);
        /* The untouched committed vault of "other" still opens. */
        assert_committed(s, "other", 2);
        store_close(s);
        raw_flip("tamper.db", "other", false, 0);              /* IV */
        s = reopen("tamper.db", key1);
        assert_bad(s, "other", false);
        store_close(s);
}
END_TEST

START_TEST(test_swap) {
        struct store *s = open_new("swap.db");
        uint8_t v[64 * 16];

        enroll(s, "a", 0, 1);
        enroll(s, "b", 0, 2);
        enroll(s, "c", 4, 3);
        next_vault(4, v);
        ck_assert_int_eq(plain_set_pending(s, "c", enr(s, "c"), 4, v, sizeof(v)), 0);
        store_close(s);
        /* Same size, same epoch: only the id in the associated data tells them apart. */
        raw_exec("swap.db", "CREATE TEMP TABLE t AS SELECT d.id, v.blob FROM device d JOIN vault v ON v.slot = "
                 SLOT_COMMITTED ";"
                 "UPDATE vault SET blob = (SELECT blob FROM t WHERE t.id = (SELECT CASE d.id WHEN 'a' THEN 'b' "
                 "ELSE 'a' END FROM device d WHERE vault.slot = " SLOT_COMMITTED ")) WHERE slot IN (SELECT "
                 SLOT_COMMITTED " FROM device d WHERE d.id IN ('a', 'b'))");
        ck_assert_int_eq(raw_int("swap.db", "SELECT count(DISTINCT blob) FROM vault v JOIN device d ON v.slot = "
                                 SLOT_COMMITTED " WHERE d.id IN ('a', 'b')"), 2);
        /* A pending vault moved into the committed slot without its epoch advancing. */
        raw_exec("swap.db", "UPDATE vault SET blob = (SELECT v.blob FROM vault v JOIN device d ON v.slot = "
                 SLOT_PENDING " WHERE d.id = 'c') WHERE slot = (SELECT " SLOT_COMMITTED " FROM device d "
                 "WHERE d.id = 'c'); DELETE FROM vault WHERE slot = (SELECT " SLOT_PENDING " FROM device d "
                 "WHERE d.id = 'c')");
        s = reopen("swap.db", key1);
        assert_bad(s, "a", false);
        assert_bad(s, "b", false);
        assert_bad(s, "c", false);
        store_close(s);
}
END_TEST

START_TEST(test_revoke) {
        struct store *s = open_new("revoke.db");
        uint8_t c[64 * 16], p[64 * 16], zero[64 * 16] = { 0 }, v[64 * 16];
        struct store_device d;

        enroll(s, "dev", 3, 1);
        next_vault(2, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 3, v, sizeof(v)), 0);
        ck_assert_int_eq(store_revoke(s, "dev"), 1);
        ck_assert_int_eq(store_revoke(s, "dev"), 0);
        ck_assert_int_eq(store_revoke(s, "ghost"), -ENOENT);
        memset(c, 1, sizeof(c));
        memset(p, 1, sizeof(p));
        ck_assert_int_eq(store_get(s, "dev", &d, c, p, sizeof(c)), 0);
        ck_assert_int_eq(d.status, STORE_REVOKED);
        ck_assert(!d.has_pending);
        ck_assert_mem_eq(c, zero, sizeof(c));
        ck_assert_mem_eq(p, zero, sizeof(p));
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 3, v, sizeof(v)), -EKEYREVOKED);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 3, v, sizeof(v)), -EKEYREVOKED);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 3, 1), -EKEYREVOKED);
        store_close(s);
        /* The vault blobs are gone, both generations. */
        ck_assert_int_eq(raw_int("revoke.db", "SELECT count(*) FROM vault"), 0);

        /* A revoked id may be enrolled again, from scratch. */
        s = reopen("revoke.db", key1);
        enroll(s, "dev", 0, 9);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_int_eq(d.status, STORE_ACTIVE);
        ck_assert_uint_eq(d.epoch, 0);
        assert_vault(s, "dev", 9, -1);
        store_close(s);
}
END_TEST

/* A session that read the device at M1 and reaches M3 after the operator revoked and enrolled
 * the id again (epoch 0 both times) must not write into the new enrollment. */
START_TEST(test_reenroll_stale_session) {
        struct store *s = open_new("reenroll.db");
        struct store_device before, after;
        uint8_t v[64 * 16];

        fill(v, sizeof(v), 7);
        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_get(s, "dev", &before, NULL, NULL, 0), 0);
        ck_assert_int_eq(store_revoke(s, "dev"), 1);
        enroll(s, "dev", 0, 2);
        ck_assert_int_eq(store_get(s, "dev", &after, NULL, NULL, 0), 0);
        ck_assert(before.enrollment != after.enrollment);

        ck_assert_int_eq(plain_set_pending(s, "dev", before.enrollment, 0, v, sizeof(v)), -ESTALE);
        ck_assert_ptr_nonnull(strstr(store_last_error(s), "enrolled again"));
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", before.enrollment, 0, v, sizeof(v)),
                         -ESTALE);
        assert_vault(s, "dev", 2, -1);

        /* The same write from a session of the new enrollment goes in; the stale commit does not. */
        ck_assert_int_eq(plain_set_pending(s, "dev", after.enrollment, 0, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "dev", before.enrollment, 0, 5), -ESTALE);
        assert_vault(s, "dev", 2, 7);
        ck_assert_int_eq(store_commit(s, "dev", after.enrollment, 0, 5), 0);
        assert_committed(s, "dev", 7);
        store_close(s);
}
END_TEST

/* A schema 1 database (no enrollment column) is upgraded in place when opened. */
START_TEST(test_schema_upgrade) {
        struct store *s = open_new("v1.db");
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        store_close(s);
        make_v5("v1.db");
        raw_exec("v1.db", "ALTER TABLE device DROP COLUMN enrollment; PRAGMA user_version = 1");
        ck_assert_int_eq(raw_int("v1.db", "SELECT count(*) FROM pragma_table_info('device') "
                                 "WHERE name = 'enrollment'"), 0);

        s = reopen("v1.db", key1);
        ck_assert_int_eq(raw_int("v1.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.enrollment, 0);
        assert_vault(s, "dev", 1, -1);
        fill(v, sizeof(v), 3);
        ck_assert_int_eq(plain_set_pending(s, "dev", 0, 0, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "dev", 0, 0, 1), 0);
        assert_committed(s, "dev", 3);
        store_close(s);
}
END_TEST

/* A schema 2 database (no audit_summary, no pruning or shape indexes) is upgraded in place. */
START_TEST(test_schema_upgrade_v2) {
        struct store *s = open_new("v2.db");

        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_audit(s, 100, "dev", "192.0.2.1:4444", "ok", 0), 0);
        store_close(s);
        make_v5("v2.db");
        raw_exec("v2.db", "DROP TABLE audit_summary; DROP INDEX audit_time; DROP INDEX device_shape;"
                 "PRAGMA user_version = 2");
        s = reopen("v2.db", key1);
        ck_assert_int_eq(raw_int("v2.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("v2.db", "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('audit_summary', 'audit_time', 'device_shape')"), 3);
        ck_assert_int_eq(store_audit_summary(s, 200, "protocol", 5000), 0);
        ck_assert_int_eq(raw_int("v2.db", "SELECT count FROM audit_summary WHERE outcome = 'protocol'"), 5000);
        ck_assert_int_eq(raw_int("v2.db", "SELECT count(*) FROM audit"), 1);
        store_close(s);
}
END_TEST

/* A schema 3 database (no kex column) is upgraded in place: its devices have kex none, and a
 * device enrolled afterwards keeps x25519. The column then sits after the blobs. */
START_TEST(test_schema_upgrade_v3) {
        struct store *s = open_new("v3.db");
        struct store_device d = mkdev("new", 64, 16, 8, 0), got;
        uint8_t v[64 * 16];

        enroll(s, "dev", 7, 1);
        store_close(s);
        make_v5("v3.db");
        raw_exec("v3.db", "ALTER TABLE device DROP COLUMN kex; PRAGMA user_version = 3");
        ck_assert_int_eq(raw_int("v3.db", "SELECT count(*) FROM pragma_table_info('device') WHERE name = 'kex'"), 0);

        s = reopen("v3.db", key1);
        ck_assert_int_eq(raw_int("v3.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("v3.db", "SELECT count(*) FROM pragma_table_info('device') WHERE name = 'kex'"), 1);
        ck_assert_int_eq(store_get(s, "dev", &got, NULL, NULL, 0), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_NONE);
        ck_assert_uint_eq(got.epoch, 7);
        assert_vault(s, "dev", 1, -1);
        d.kex = SV_KEX_X25519;
        fill(v, sizeof(v), 2);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 1), 0);
        ck_assert_int_eq(store_get(s, "new", &got, NULL, NULL, 0), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_X25519);
        assert_vault(s, "new", 2, -1);
        store_close(s);
        /* Opened again: nothing left to upgrade, the values stay. */
        s = reopen("v3.db", key1);
        ck_assert_int_eq(store_get(s, "new", &got, NULL, NULL, 0), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_X25519);
        store_close(s);
}
END_TEST

/* Each device's kex: kept, reported by get, list and the handshake's lookup, reset by a new
 * enrollment; x25519 only with the hardened profile, nothing else. */
static int kex_list_cb(const struct store_device *dev, void *userdata) {
        unsigned *seen = userdata;

        if (strcmp(dev->id, "a") == 0 && dev->kex == SV_KEX_X25519)
                seen[0]++;
        if (strcmp(dev->id, "b") == 0 && dev->kex == SV_KEX_NONE)
                seen[1]++;
        return 0;
}

START_TEST(test_kex) {
        struct store *s = open_new("kex.db");
        struct store_device d = mkdev("a", 64, 16, 8, 0), got;
        uint8_t v[64 * 16], blob[STORE_SEALED_LEN(64 * 16)];
        unsigned seen[2] = { 0, 0 };
        size_t blob_len = 0;

        fill(v, sizeof(v), 1);
        d.kex = SV_KEX_X25519;
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 1), 0);
        enroll(s, "b", 0, 2);
        ck_assert_int_eq(store_get(s, "a", &got, NULL, NULL, 0), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_X25519);
        ck_assert_int_eq(store_get_sealed(s, "a", 0, 0, &got, blob, sizeof(blob), &blob_len), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_X25519);
        ck_assert_int_eq(store_list(s, kex_list_cb, seen), 0);
        ck_assert_uint_eq(seen[0], 1);
        ck_assert_uint_eq(seen[1], 1);

        /* Refused: x25519 with the paper profile, an unknown mode. */
        d = mkdev("c", 64, 16, 8, 0);
        d.profile = SV_PROFILE_PAPER;
        d.kex = SV_KEX_X25519;
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 1), -EINVAL);
        d.profile = SV_PROFILE_HARDENED;
        d.kex = 2;
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 1), -EINVAL);
        ck_assert_int_eq(store_get(s, "c", &got, NULL, NULL, 0), -ENOENT);

        /* Revoked and enrolled again with kex none: the new value. */
        ck_assert_int_eq(store_revoke(s, "a"), 1);
        d = mkdev("a", 64, 16, 8, 0);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 2), 0);
        ck_assert_int_eq(store_get(s, "a", &got, NULL, NULL, 0), 0);
        ck_assert_uint_eq(got.kex, SV_KEX_NONE);
        store_close(s);

        /* The schema refuses x25519 with paper even when written around the store. */
        raw_exec("kex.db", "UPDATE device SET kex = 1 WHERE id = 'b'");
        ck_assert_int_eq(raw_int("kex.db", "SELECT kex FROM device WHERE id = 'b'"), 1);
        ck_assert(!raw_try("kex.db", "UPDATE device SET profile = 2 WHERE id = 'b'"));
        ck_assert(!raw_try("kex.db", "UPDATE device SET kex = 5 WHERE id = 'b'"));
}
END_TEST

/* A schema 4 database (no aggregate table) is upgraded in place. */
START_TEST(test_schema_upgrade_v4) {
        struct store *s = open_new("v4.db");
        struct aggregate a;

        enroll(s, "dev", 0, 1);
        store_close(s);
        make_v5("v4.db");
        raw_exec("v4.db", "DROP TABLE aggregate; PRAGMA user_version = 4");
        s = reopen("v4.db", key1);
        ck_assert_int_eq(raw_int("v4.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(store_aggregate_add(s, "temp", 1.5, &a), 0);
        ck_assert_uint_eq(a.count, 1);
        assert_vault(s, "dev", 1, -1);
        store_close(s);
}
END_TEST

/*
 * A schema 5 database (both vault generations in the device row) is upgraded in place: every
 * device keeps its parameters, token, counters and generations (the pending one of an epoch
 * at the int64 sign boundary and at the last epoch too), a revoked one stays revoked without
 * a vault, and the handshake's writes go on from there.
 */
START_TEST(test_schema_upgrade_v5) {
        struct store *s = open_new("v5.db");
        struct store_device before[5], after, d = mkdev("x", 64, 16, 8, 0);
        static const char *const ids[5] = { "plain", "pend", "sign", "top", "gone" };
        uint8_t v[64 * 16], blob[STORE_SEALED_LEN(64 * 16)], out[64 * 16];
        size_t blob_len = 0;

        enroll(s, "plain", 3, 1);
        ck_assert_int_eq(store_record_failure(s, "plain", 77), 0);
        d = mkdev("pend", 64, 16, 8, 9);
        d.kex = SV_KEX_X25519;
        fill(v, sizeof(v), 2);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 5), 0);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "pend", enr(s, "pend"), 9, v, sizeof(v)), 0);
        enroll(s, "sign", (UINT64_C(1) << 63) - 1, 4);
        next_vault(5, v);
        ck_assert_int_eq(plain_set_pending(s, "sign", enr(s, "sign"), (UINT64_C(1) << 63) - 1, v, sizeof(v)), 0);
        enroll(s, "top", UINT64_MAX - 1, 6);
        next_vault(7, v);
        ck_assert_int_eq(plain_set_pending(s, "top", enr(s, "top"), UINT64_MAX - 1, v, sizeof(v)), 0);
        enroll(s, "gone", 0, 8);
        ck_assert_int_eq(store_revoke(s, "gone"), 1);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(store_get(s, ids[i], &before[i], NULL, NULL, 0), 0);
        store_close(s);
        make_v5("v5.db");
        ck_assert_int_eq(raw_int("v5.db", "SELECT count(*) FROM device WHERE pending IS NOT NULL"), 3);

        s = reopen("v5.db", key1);
        ck_assert_int_eq(raw_int("v5.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("v5.db", "SELECT count(*) FROM pragma_table_info('device') WHERE name IN "
                                 "('vault', 'pending')"), 0);
        ck_assert_int_eq(raw_int("v5.db", "SELECT count(*) FROM vault"), 7);
        ck_assert_int_eq(raw_int("v5.db", "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('device_shape', 'device_5', 'device_6')"), 1);
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(store_get(s, ids[i], &after, NULL, NULL, 0), 0);
                ck_assert_str_eq(after.id, before[i].id);
                ck_assert_int_eq(after.status, before[i].status);
                ck_assert_uint_eq(after.epoch, before[i].epoch);
                ck_assert(after.has_pending == before[i].has_pending);
                ck_assert_uint_eq(after.enrollment, before[i].enrollment);
                ck_assert_uint_eq(after.kex, before[i].kex);
                ck_assert_uint_eq(after.failures, before[i].failures);
                ck_assert_int_eq(after.last_failure, before[i].last_failure);
                ck_assert_int_eq(after.created, before[i].created);
                ck_assert(after.n == before[i].n && after.m == before[i].m && after.p == before[i].p);
        }
        assert_vault(s, "plain", 1, -1);
        assert_vault(s, "pend", 2, 3);
        assert_vault(s, "sign", 4, 5);
        assert_vault(s, "top", 6, 7);
        ck_assert_int_eq(store_get(s, "gone", &after, NULL, NULL, 0), 0);
        ck_assert_int_eq(after.status, STORE_REVOKED);

        /* The handshake's lookup finds both generations; the writes go on. */
        ck_assert_int_eq(store_get_sealed(s, "pend", 10, 0, &after, blob, sizeof(blob), &blob_len), 0);
        ck_assert_int_eq(store_open_vault(s, "pend", 10, blob, blob_len, out, sizeof(out)), 0);
        next_vault(3, v);
        ck_assert_mem_eq(out, v, sizeof(out));
        ck_assert_int_eq(store_commit(s, "pend", enr(s, "pend"), 9, 10), 0);
        assert_vault(s, "pend", 3, -1);
        ck_assert_int_eq(store_commit(s, "sign", enr(s, "sign"), (UINT64_C(1) << 63) - 1, 10), 0);
        assert_vault(s, "sign", 5, -1);
        next_vault(8, v);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "top", enr(s, "top"), UINT64_MAX - 1, v, sizeof(v)),
                         -EOVERFLOW);
        ck_assert_int_eq(store_commit(s, "top", enr(s, "top"), UINT64_MAX - 1, 10), 0);
        assert_vault(s, "top", 7, -1);
        ck_assert_int_eq(plain_set_pending(s, "plain", enr(s, "plain"), 3, v, sizeof(v)), 0);
        assert_vault(s, "plain", 1, 8);
        enroll(s, "gone", 0, 9);
        assert_vault(s, "gone", 9, -1);
        store_close(s);
        /* Opened again: nothing left to upgrade. */
        s = reopen("v5.db", key1);
        assert_vault(s, "plain", 1, 8);
        store_close(s);
}
END_TEST

/*
 * Schema 6 keeps one row per generation: a pending vault adds one, a commit deletes the old
 * one, a promotion replaces the old committed one, a revocation deletes both. A row whose
 * generation does not fit the device's epoch is refused as a damaged file.
 */
/* After an upgrade: a claimed session of "dev" (at epoch 0, vault 1) commits; s is closed. */
static void assert_claimed_session(struct store *s) {
        uint8_t v[64 * 16];

        store_set_claim(s, 1, 60000);
        next_vault(2, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 0, 5), 0);
        assert_vault(s, "dev", 2, -1);
        store_close(s);
}

/* A schema 6 file (no session claims) is upgraded when opened, its devices kept. */
START_TEST(test_schema_upgrade_v6) {
        struct store *s = open_new("v6.db");

        enroll(s, "dev", 0, 1);
        store_close(s);
        raw_exec("v6.db", "ALTER TABLE device DROP COLUMN claim_owner; ALTER TABLE device DROP COLUMN claim_epoch;"
                 " ALTER TABLE device DROP COLUMN claim_until; PRAGMA user_version = 6");
        s = reopen("v6.db", key1);
        ck_assert_int_eq(raw_int("v6.db", "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        ck_assert_int_eq(raw_int("v6.db", "SELECT count(*) FROM pragma_table_info('device') WHERE name LIKE 'claim_%'"),
                         3);
        assert_claimed_session(s);
}
END_TEST

START_TEST(test_generation_rows) {
        struct store *s = open_new("rows.db");
        struct store_device d;
        uint8_t v[64 * 16], c[64 * 16];

        enroll(s, "dev", 4, 1);
        enroll(s, "other", 0, 2);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault"), 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 4, v, sizeof(v)), 0);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault"), 3);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 4, 1), 0);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault"), 2);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault WHERE epoch = 4"), 0);
        next_vault(4, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), 0);
        next_vault(5, v);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), 0);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault"), 3);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault WHERE epoch IN (6, 7)"), 2);
        assert_vault(s, "dev", 4, 5);
        store_close(s);

        /* The pending row claims another generation: refused, wherever it is read. */
        raw_exec("rows.db", "UPDATE vault SET epoch = 9 WHERE epoch = 7");
        s = reopen("rows.db", key1);
        ck_assert_int_eq(store_get(s, "dev", &d, c, NULL, sizeof(c)), -EBADMSG);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), -EBADMSG);
        assert_committed(s, "other", 2);
        store_close(s);
        raw_exec("rows.db", "UPDATE vault SET epoch = 7 WHERE epoch = 9; UPDATE vault SET epoch = 5 WHERE epoch = 6");
        s = reopen("rows.db", key1);
        ck_assert_int_eq(store_get(s, "dev", &d, c, NULL, sizeof(c)), -EBADMSG);
        /* The row itself still reads (authserver show), the vault does not. */
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 6);
        ck_assert_int_eq(store_revoke(s, "dev"), 1);
        ck_assert_int_eq(raw_int("rows.db", "SELECT count(*) FROM vault"), 1);
        store_close(s);
}
END_TEST

/* The next vault sealed before it is queued: the writes store the blob as it is, for the
 * generation it was sealed for, and a blob sealed for another id or generation never opens. */
START_TEST(test_sealed_writes) {
        struct store *s = open_new("sealedw.db");
        uint8_t v[64 * 16], blob[STORE_SEALED_LEN(64 * 16)], other[STORE_SEALED_LEN(64 * 16)];
        struct store_device d;

        enroll(s, "dev", 2, 1);
        enroll(s, "b", 2, 2);
        next_vault(3, v);
        memset(blob, 0x5a, sizeof(blob));
        ck_assert_int_eq(store_seal_next(s, "dev", 2, v, sizeof(v), blob), 0);
        /* Sealed: the plaintext is nowhere in the blob. */
        ck_assert_ptr_null(memmem(blob, sizeof(blob), v, 16));
        ck_assert_int_eq(store_set_pending_sealed(s, "dev", enr(s, "dev"), 2, blob, sizeof(blob)), 0);
        assert_vault(s, "dev", 1, 3);
        /* The device used the pending generation (epoch 3): its next is sealed for epoch 4. */
        next_vault(4, v);
        ck_assert_int_eq(store_seal_next(s, "dev", 3, v, sizeof(v), blob), 0);
        ck_assert_int_eq(store_promote_and_set_pending_sealed(s, "dev", enr(s, "dev"), 2, blob, sizeof(blob)), 0);
        assert_vault(s, "dev", 3, 4);

        /* Refused before anything is written. */
        ck_assert_int_eq(store_seal_next(s, "dev", UINT64_MAX, v, sizeof(v), blob), -EOVERFLOW);
        ck_assert_int_eq(store_seal_next(s, "bad id", 3, v, sizeof(v), blob), -EINVAL);
        ck_assert_int_eq(store_seal_next(s, "dev", 3, v, 100, blob), -EINVAL);
        ck_assert_int_eq(store_seal_next(s, "dev", 3, v, sizeof(v), NULL), -EINVAL);
        ck_assert_int_eq(store_set_pending_sealed(s, "dev", enr(s, "dev"), 3, blob, 20), -EINVAL);
        ck_assert_int_eq(store_set_pending_sealed(s, "dev", enr(s, "dev"), 3, blob, sizeof(blob) - 16), -EINVAL);
        ck_assert_int_eq(store_set_pending_sealed(s, "dev", enr(s, "dev"), 3, NULL, sizeof(blob)), -EINVAL);
        ck_assert_int_eq(store_set_pending_sealed(s, "dev", enr(s, "dev"), UINT64_MAX, blob, sizeof(blob)),
                         -EOVERFLOW);
        assert_vault(s, "dev", 3, 4);

        /* A blob sealed for another device, or for another generation, is stored as it is and
         * fails authentication when read. */
        ck_assert_int_eq(store_seal_next(s, "dev", 2, v, sizeof(v), other), 0);
        ck_assert_int_eq(store_set_pending_sealed(s, "b", enr(s, "b"), 2, other, sizeof(other)), 0);
        ck_assert_int_eq(store_get(s, "b", &d, v, blob, sizeof(v)), -EBADMSG);
        ck_assert_int_eq(store_seal_next(s, "b", 5, v, sizeof(v), other), 0);
        ck_assert_int_eq(store_set_pending_sealed(s, "b", enr(s, "b"), 2, other, sizeof(other)), 0);
        ck_assert_int_eq(store_get(s, "b", &d, v, blob, sizeof(v)), -EBADMSG);
        assert_committed(s, "b", 2);
        store_close(s);
}
END_TEST

/*
 * A write of several statements is atomic: a commit whose second statement (the removal of
 * the old generation) fails leaves the device at its epoch, alone and inside a batch, where
 * the whole batch is rolled back rather than committed half done.
 */
START_TEST(test_half_done_write) {
        struct store *s = open_new("half.db");
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        enroll(s, "b", 0, 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, v, sizeof(v)), 0);
        store_close(s);
        raw_exec("half.db", "CREATE TRIGGER no_delete BEFORE DELETE ON vault BEGIN SELECT RAISE(ABORT, 'no'); END");
        s = reopen("half.db", key1);
        ck_assert_int_lt(store_commit(s, "dev", enr(s, "dev"), 0, 1), 0);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 0);
        ck_assert(d.has_pending);

        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(plain_set_pending(s, "b", enr(s, "b"), 0, v, sizeof(v)), 0);
        ck_assert_int_lt(store_commit(s, "dev", enr(s, "dev"), 0, 1), 0);
        ck_assert_int_eq(store_batch_commit(s, false), -EIO);
        ck_assert_ptr_nonnull(strstr(store_last_error(s), "half done"));
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, 0);
        ck_assert_int_eq(store_get(s, "b", &d, NULL, NULL, 0), 0);
        ck_assert(!d.has_pending);
        store_close(s);
        raw_exec("half.db", "DROP TRIGGER no_delete");
        s = reopen("half.db", key1);
        ck_assert_int_eq(store_commit(s, "dev", enr(s, "dev"), 0, 1), 0);
        assert_vault(s, "dev", 3, -1);
        store_close(s);
}
END_TEST

static int collect_aggregate(const struct aggregate *a, void *userdata) {
        struct aggregate *seen = userdata;
        size_t i = 0;

        while (seen[i].count)
                i++;
        ck_assert_uint_lt(i, 3);
        seen[i] = *a;
        return 0;
}

/* The aggregates: folded across calls, kept across a reopen, listed in name order; an add
 * that would overflow writes nothing; a corrupt row is refused, not folded into. */
START_TEST(test_aggregates) {
        struct store *s = open_new("agg.db");
        struct aggregate a, seen[4];

        ck_assert_int_eq(store_aggregate_add(s, "temp", 21.5, &a), 0);
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_aggregate_add(s, "temp", 22.5, &a), 0);
        ck_assert_int_eq(store_aggregate_add(s, "hum", 40, &a), 0);
        ck_assert_int_eq(store_batch_commit(s, false), 0);
        ck_assert_int_eq(store_aggregate_add(s, "big", 1e308, &a), 0);
        ck_assert_int_eq(store_aggregate_add(s, "big", 1e308, &a), -ERANGE);
        ck_assert_int_eq(store_aggregate_add(s, "bad name", 1, &a), -EINVAL);
        store_close(s);

        s = reopen("agg.db", key1);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(store_aggregate_list(s, collect_aggregate, seen), 0);
        ck_assert_str_eq(seen[0].name, "big");
        ck_assert_uint_eq(seen[0].count, 1);
        ck_assert(seen[0].sum == 1e308);
        ck_assert_str_eq(seen[1].name, "hum");
        ck_assert_str_eq(seen[2].name, "temp");
        ck_assert_uint_eq(seen[2].count, 2);
        ck_assert(seen[2].sum == 44 && seen[2].min == 21.5 && seen[2].max == 22.5);
        ck_assert_int_eq(store_aggregate_add(s, "temp", -3, &a), 0);
        ck_assert_uint_eq(a.count, 3);
        ck_assert(a.sum == 41 && a.min == -3 && a.max == 22.5);
        store_close(s);

        raw_exec("agg.db", "UPDATE aggregate SET min = 100 WHERE name = 'hum'");
        s = reopen("agg.db", key1);
        ck_assert_int_eq(store_aggregate_add(s, "hum", 1, &a), -EBADMSG);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(store_aggregate_list(s, collect_aggregate, seen), -EBADMSG);
        store_close(s);
        ck_assert_int_eq(raw_int("agg.db", "SELECT count FROM aggregate WHERE name = 'hum'"), 1);
}
END_TEST

struct shape_seen {
        int n;
        unsigned p[4];
        uint64_t count[4];
};

static int shape_cb(uint8_t profile, uint16_t n, uint8_t m, uint8_t p, uint64_t count, int64_t stand_in,
                    void *userdata) {
        struct shape_seen *seen = userdata;

        ck_assert_int_gt(stand_in, 0);
        ck_assert_int_lt(seen->n, 4);
        ck_assert_uint_eq(profile, SV_PROFILE_HARDENED);
        ck_assert_uint_eq(m, 16);
        ck_assert_uint_eq(n, 64);
        seen->p[seen->n] = p;
        seen->count[seen->n++] = count;
        return 0;
}

/* Decoys: shapes of the active devices with counts, a keyed hash that depends on the master
 * key, and decoy vaults that open only as what they are. */
START_TEST(test_decoys) {
        struct store *s = open_new("decoy.db"), *other = NULL;
        struct store_device d = mkdev("p4", 64, 16, 4, 0);
        struct shape_seen seen = { 0 };
        uint8_t v[64 * 16], blob[STORE_SEALED_LEN(64 * 16)], out[64 * 16];
        uint64_t h1 = 0, h2 = 0, h3 = 0, dv1 = 0, dv2 = 0;

        enroll(s, "a", 0, 1);
        enroll(s, "b", 0, 2);
        enroll(s, "c", 0, 3);
        fill(v, sizeof(v), 4);
        ck_assert_int_eq(store_enroll(s, &d, v, sizeof(v), 0), 0);
        ck_assert_int_eq(store_revoke(s, "c"), 1);
        ck_assert_int_eq(store_shapes(s, shape_cb, &seen), 0);
        ck_assert_int_eq(seen.n, 2);
        ck_assert_uint_eq(seen.p[0], 4);
        ck_assert_uint_eq(seen.count[0], 1);
        ck_assert_uint_eq(seen.p[1], 8);
        ck_assert_uint_eq(seen.count[1], 2);        /* c is revoked */

        ck_assert_int_eq(store_decoy_hash(s, "nobody", &h1), 0);
        ck_assert_int_eq(store_decoy_hash(s, "nobody", &h2), 0);
        ck_assert_uint_eq(h1, h2);
        ck_assert_int_eq(store_decoy_hash(s, "nobody2", &h2), 0);
        ck_assert_uint_ne(h1, h2);
        ck_assert_int_eq(store_open(db_of("decoy2.db"), key2, STORE_CREATE, &other), 0);
        ck_assert_int_eq(store_decoy_hash(other, "nobody", &h3), 0);
        ck_assert_uint_ne(h1, h3);

        ck_assert_int_eq(store_decoy_seal(s, sizeof(out), blob), 0);
        ck_assert_int_eq(store_decoy_open(s, blob, sizeof(out), out), 0);
        ck_assert_int_eq(store_decoy_open(other, blob, sizeof(out), out), -EBADMSG);
        ck_assert_int_eq(store_decoy_seal(s, 7, blob), -EINVAL);

        /* Another connection's change of the shapes shows in the data version; on SQLite our
         * own does not (PostgreSQL's counter is a row every connection bumps, ours too). */
        ck_assert_int_eq(store_data_version(s, &dv1), 0);
        ck_assert_int_eq(store_revoke(s, "b"), 1);
        ck_assert_int_eq(store_data_version(s, &dv2), 0);
        if (!pg_base())
                ck_assert_uint_eq(dv1, dv2);
        dv1 = dv2;
        raw_exec("decoy.db", "UPDATE device SET status = 'revoked' WHERE id = 'a'");
        ck_assert_int_eq(store_data_version(s, &dv2), 0);
        ck_assert_uint_ne(dv1, dv2);
        store_close(other);
        store_close(s);
}
END_TEST

/* The handshake lookup returns the sealed generation M1's epoch names, and only that one. */
START_TEST(test_get_sealed) {
        struct store *s = open_new("sealed.db");
        struct store_device d;
        uint8_t v[64 * 16], blob[2 * STORE_SEALED_LEN(64 * 16)], out[64 * 16], want[64 * 16];
        size_t len = 1;

        enroll(s, "dev", 5, 1);
        ck_assert_int_eq(store_get_sealed(s, "nobody", 5, 1, &d, blob, sizeof(blob), &len), -ENOENT);
        ck_assert_int_eq(store_get_sealed(s, "dev", 6, 0, &d, blob, sizeof(blob), &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(store_get_sealed(s, "dev", 5, 0, &d, blob, sizeof(blob), &len), 0);
        ck_assert_uint_eq(len, STORE_SEALED_LEN(sizeof(out)));
        ck_assert_int_eq(store_open_vault(s, "dev", 5, blob, len, out, sizeof(out)), 0);
        fill(want, sizeof(want), 1);
        ck_assert_mem_eq(out, want, sizeof(out));
        ck_assert_int_eq(store_open_vault(s, "dev", 6, blob, len, out, sizeof(out)), -EBADMSG);

        fill(v, sizeof(v), 2);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 5, v, sizeof(v)), 0);
        ck_assert_int_eq(store_get_sealed(s, "dev", 6, 0, &d, blob, sizeof(blob), &len), 0);
        ck_assert_int_eq(store_open_vault(s, "dev", 6, blob, len, out, sizeof(out)), 0);
        ck_assert_mem_eq(out, v, sizeof(out));
        ck_assert_int_eq(store_get_sealed(s, "dev", 7, 0, &d, blob, sizeof(blob), &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(store_get_sealed(s, "dev", 5, 0, &d, blob, 10, &len), -EBADMSG);
        ck_assert_int_eq(store_revoke(s, "dev"), 1);
        ck_assert_int_eq(store_get_sealed(s, "dev", 5, 0, &d, blob, sizeof(blob), &len), 0);
        ck_assert_uint_eq(len, 0);
        store_close(s);
}
END_TEST

/* The stand-in row number of the shapes of p (the last one store_shapes() gives). */
static int stand_in_cb(uint8_t profile, uint16_t n, uint8_t m, uint8_t p, uint64_t count, int64_t stand_in,
                       void *userdata) {
        (void) profile, (void) n, (void) m, (void) count;
        if (p == 4)
                *(int64_t *) userdata = stand_in;
        return 0;
}

/* The lookup of an enrolled id with a stand-in that is another device's row reads the id's
 * own row, never the stand-in's, whichever row the engine would come to first (the
 * stand-in here has the lower number and another shape); an id not enrolled reads as such. */
START_TEST(test_lookup_row_choice) {
        struct store *s = open_new("choice.db");
        struct store_device other = mkdev("other", 64, 16, 4, 9), d;
        uint8_t v[64 * 16], blob[2 * STORE_SEALED_LEN(64 * 16)], out[64 * 16], want[64 * 16];
        int64_t stand_in = 0;
        size_t len = 0;

        fill(v, sizeof(v), 7);
        ck_assert_int_eq(store_enroll(s, &other, v, sizeof(v), 1000), 0);
        enroll(s, "dev", 5, 1);
        ck_assert_int_eq(store_shapes(s, stand_in_cb, &stand_in), 0);
        ck_assert_int_gt(stand_in, 0);
        for (int i = 0; i < 3; i++) {
                memset(&d, 0, sizeof d);
                ck_assert_int_eq(store_get_sealed(s, "dev", 5, stand_in, &d, blob, sizeof(blob), &len), 0);
                ck_assert_str_eq(d.id, "dev");
                ck_assert_uint_eq(d.epoch, 5);
                ck_assert_uint_eq(d.p, 8);
                ck_assert_uint_eq(len, STORE_SEALED_LEN(sizeof(out)));
                ck_assert_int_eq(store_open_vault(s, "dev", 5, blob, len, out, sizeof(out)), 0);
                fill(want, sizeof(want), 1);
                ck_assert_mem_eq(out, want, sizeof(out));
                /* The stand-in itself, by its id. */
                ck_assert_int_eq(store_get_sealed(s, "other", 9, stand_in, &d, blob, sizeof(blob), &len), 0);
                ck_assert_str_eq(d.id, "other");
                ck_assert_uint_eq(d.p, 4);
                ck_assert_int_eq(store_get_sealed(s, "nobody", 9, stand_in, &d, blob, sizeof(blob), &len),
                                 -ENOENT);
                ck_assert_int_eq(store_get_sealed(s, "nobody", 9, 0, &d, blob, sizeof(blob), &len), -ENOENT);
        }
        store_close(s);
}
END_TEST

/* Aggregated failures and retention: old rows of both audit tables go, in batches. */
START_TEST(test_audit_prune) {
        struct store *s = open_new("prune.db");
        struct store_device d;

        enroll(s, "dev", 0, 1);
        for (int i = 0; i < 10; i++)
                ck_assert_int_eq(store_audit(s, 100 + i, "dev", "peer", "ok", 0), 0);
        ck_assert_int_eq(store_audit(s, 1000, "dev", "peer", "ok", 0), 0);
        ck_assert_int_eq(store_audit_summary(s, 100, "protocol", 7), 0);
        ck_assert_int_eq(store_audit_summary(s, 1000, "decoy", 3), 0);
        ck_assert_int_eq(store_audit_summary(s, 1, "bad outcome", 3), -EINVAL);
        ck_assert_int_eq(store_audit_prune(s, 500, 4), 4);
        ck_assert_int_eq(store_audit_prune(s, 500, 100), 7);
        ck_assert_int_eq(store_audit_prune(s, 500, 100), 0);
        ck_assert_int_eq(raw_int("prune.db", "SELECT count(*) FROM audit"), 1);
        ck_assert_int_eq(raw_int("prune.db", "SELECT count(*) FROM audit_summary"), 1);

        ck_assert_int_eq(store_add_failures(s, "dev", 5, 300), 0);
        ck_assert_int_eq(store_add_failures(s, "dev", 2, 200), 0);
        ck_assert_int_eq(store_add_failures(s, "nobody", 2, 200), -ENOENT);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.failures, 7);
        ck_assert_int_eq(d.last_failure, 300);
        store_close(s);
}
END_TEST

struct seen {
        char ids[8][STORE_ID_MAX + 1];
        bool pending[8];
        bool revoked[8];
        int n, stop_at;
};

static int collect(const struct store_device *dev, void *userdata) {
        struct seen *seen = userdata;

        if (seen->n == seen->stop_at)
                return -ECANCELED;
        ck_assert_int_lt(seen->n, 8);
        strcpy(seen->ids[seen->n], dev->id);
        seen->pending[seen->n] = dev->has_pending;
        seen->revoked[seen->n] = dev->status == STORE_REVOKED;
        seen->n++;
        return 0;
}

START_TEST(test_list_count) {
        struct store *s = open_new("list.db");
        struct seen seen = { .stop_at = -1 };
        uint64_t count = 0;
        uint8_t v[64 * 16];

        ck_assert_int_eq(store_list(s, collect, &seen), 0);
        ck_assert_int_eq(seen.n, 0);
        enroll(s, "charlie", 0, 1);
        enroll(s, "alpha", 0, 2);
        enroll(s, "bravo", 0, 3);
        enroll(s, "Zulu", 0, 4);
        next_vault(5, v);
        ck_assert_int_eq(plain_set_pending(s, "alpha", enr(s, "alpha"), 0, v, sizeof(v)), 0);
        ck_assert_int_eq(store_revoke(s, "bravo"), 1);
        ck_assert_int_eq(store_count(s, &count), 0);
        ck_assert_uint_eq(count, 4);
        ck_assert_int_eq(store_list(s, collect, &seen), 0);
        ck_assert_int_eq(seen.n, 4);
        ck_assert_str_eq(seen.ids[0], "Zulu");
        ck_assert_str_eq(seen.ids[1], "alpha");
        ck_assert_str_eq(seen.ids[2], "bravo");
        ck_assert_str_eq(seen.ids[3], "charlie");
        ck_assert(seen.pending[1] && !seen.pending[0] && !seen.pending[3]);
        ck_assert(seen.revoked[2] && !seen.revoked[1]);

        memset(&seen, 0, sizeof(seen));
        seen.stop_at = 2;
        ck_assert_int_eq(store_list(s, collect, &seen), -ECANCELED);
        ck_assert_int_eq(seen.n, 2);
        /* The walk was reset: the next one starts again. */
        memset(&seen, 0, sizeof(seen));
        seen.stop_at = -1;
        ck_assert_int_eq(store_list(s, collect, &seen), 0);
        ck_assert_int_eq(seen.n, 4);
        store_close(s);
}
END_TEST

START_TEST(test_audit) {
        struct store *s = open_new("audit.db");

        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_audit(s, 100, "dev", "192.0.2.1:4444", "ok", 0), 0);
        ck_assert_int_eq(store_audit(s, 101, "unknown-dev", "[2001:db8::1]:5555", "decoy", 7), 0);
        ck_assert_int_eq(store_audit(s, 102, NULL, "192.0.2.9:1", "protocol", 0), 0);
        ck_assert_int_eq(store_audit(s, 103, "dev", "192.0.2.1:4445", "desync", UINT64_MAX), 0);
        store_close(s);
        ck_assert_int_eq(raw_int("audit.db", "SELECT count(*) FROM audit"), 4);
        ck_assert_int_eq(raw_int("audit.db", "SELECT count(*) FROM audit WHERE device = 'dev' AND "
                                 "outcome = 'ok' AND peer = '192.0.2.1:4444' AND time = 100"), 1);
        ck_assert_int_eq(raw_int("audit.db", "SELECT count(*) FROM audit WHERE device IS NULL "
                                 "AND outcome = 'protocol'"), 1);
        ck_assert_int_eq(raw_int("audit.db", "SELECT epoch FROM audit WHERE time = 101"), 7);
        ck_assert_int_eq(raw_int("audit.db", "SELECT epoch FROM audit WHERE time = 103"), -1);
        ck_assert_int_eq(raw_int("audit.db", "SELECT max(id) FROM audit"), 4);
}
END_TEST

START_TEST(test_epoch_limits) {
        struct store *s = open_new("epoch.db");
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "top", UINT64_MAX - 1, 1);
        enroll(s, "sign", (UINT64_C(1) << 63) - 1, 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "top", enr(s, "top"), UINT64_MAX - 1, v, sizeof(v)),
                         -EOVERFLOW);
        ck_assert_int_eq(plain_set_pending(s, "top", enr(s, "top"), UINT64_MAX - 1, v, sizeof(v)), 0);
        assert_vault(s, "top", 1, 3);
        ck_assert_int_eq(store_commit(s, "top", enr(s, "top"), UINT64_MAX - 1, 5), 0);
        ck_assert_int_eq(plain_set_pending(s, "sign", enr(s, "sign"), (UINT64_C(1) << 63) - 1, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "sign", enr(s, "sign"), (UINT64_C(1) << 63) - 1, 5), 0);
        store_close(s);

        ck_assert_int_eq(raw_int("epoch.db", "SELECT epoch FROM device WHERE id = 'top'"), -1);
        if (!pg_base())                 /* SQLite's column types are per value */
                ck_assert_int_eq(raw_int("epoch.db", "SELECT typeof(epoch) = 'integer' FROM device "
                                         "WHERE id = 'sign'"), 1);
        s = reopen("epoch.db", key1);
        ck_assert_int_eq(store_get(s, "top", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, UINT64_MAX);
        assert_vault(s, "top", 3, -1);
        ck_assert_int_eq(store_get(s, "sign", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, UINT64_C(1) << 63);
        assert_vault(s, "sign", 3, -1);
        ck_assert_int_eq(plain_set_pending(s, "top", enr(s, "top"), UINT64_MAX, v, sizeof(v)), -EOVERFLOW);
        ck_assert_int_eq(store_commit(s, "top", enr(s, "top"), UINT64_MAX, 5), -EOVERFLOW);
        ck_assert_int_eq(store_get(s, "top", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.epoch, UINT64_MAX);
        ck_assert(!d.has_pending);
        store_close(s);
}
END_TEST

START_TEST(test_batch) {
        struct store *s = open_new("batch.db");
        uint8_t v[64 * 16];
        char id[16];

        ck_assert_int_eq(store_batch_commit(s, true), -EINVAL);
        ck_assert_int_eq(store_batch_rollback(s), -EINVAL);
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_batch_begin(s), -EBUSY);
        for (int i = 0; i < 100; i++) {
                snprintf(id, sizeof(id), "dev-%03d", i);
                enroll(s, id, (uint64_t) i, (unsigned) i);
        }
        ck_assert_int_eq(store_batch_commit(s, false), 0);

        ck_assert_int_eq(store_batch_begin(s), 0);
        for (int i = 0; i < 100; i++) {
                snprintf(id, sizeof(id), "dev-%03d", i);
                next_vault((unsigned) i + 1000, v);
                ck_assert_int_eq(plain_set_pending(s, id, enr(s, id), (uint64_t) i, v, sizeof(v)), 0);
        }
        /* A stale write inside a batch fails alone and leaves the batch usable. */
        ck_assert_int_eq(plain_set_pending(s, "dev-000", enr(s, "dev-000"), 5, v, sizeof(v)), -ESTALE);
        ck_assert_int_eq(store_batch_commit(s, true), 0);

        /* A rolled back batch leaves nothing. */
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_commit(s, "dev-000", enr(s, "dev-000"), 0, 1), 0);
        ck_assert_int_eq(store_batch_rollback(s), 0);
        store_close(s);

        s = reopen("batch.db", key1);
        for (int i = 0; i < 100; i++) {
                snprintf(id, sizeof(id), "dev-%03d", i);
                assert_vault(s, id, (unsigned) i, i + 1000);
        }
        /* A batch left open at close is rolled back. */
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_commit(s, "dev-001", enr(s, "dev-001"), 1, 1), 0);
        store_close(s);
        s = reopen("batch.db", key1);
        assert_vault(s, "dev-001", 1, 1001);
        store_close(s);
}
END_TEST

/* Whether any m-byte key of the vault occurs anywhere in the file. */
static bool file_has_key(const char *path, const uint8_t *vault, size_t n, size_t m) {
        FILE *f = fopen(path, "rb");
        uint8_t *data;
        long size;
        bool found = false;

        if (!f)
                return false;
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        rewind(f);
        data = malloc((size_t) size + 1);
        ck_assert_ptr_nonnull(data);
        ck_assert_uint_eq(fread(data, 1, (size_t) size, f), (size_t) size);
        fclose(f);
        for (size_t i = 0; i < n && !found; i++)
                found = memmem(data, (size_t) size, vault + i * m, m) != NULL;
        free(data);
        return found;
}

START_TEST(test_no_plaintext_on_disk) {
        struct store_device d = mkdev("secret", 256, 16, 16, 0);
        static uint8_t v0[256 * 16], v1[256 * 16], v2[256 * 16];
        char wal[600];
        struct store *s;

        ck_assert_int_eq(RAND_bytes(v0, sizeof(v0)), 1);
        ck_assert_int_eq(RAND_bytes(v1, sizeof(v1)), 1);
        ck_assert_int_eq(RAND_bytes(v2, sizeof(v2)), 1);
        s = open_new("plain.db");
        ck_assert_int_eq(store_enroll(s, &d, v0, sizeof(v0), 1), 0);
        ck_assert_int_eq(plain_set_pending(s, "secret", enr(s, "secret"), 0, v1, sizeof(v1)), 0);
        ck_assert_int_eq(store_commit(s, "secret", enr(s, "secret"), 0, 2), 0);
        ck_assert_int_eq(plain_set_pending(s, "secret", enr(s, "secret"), 1, v2, sizeof(v2)), 0);
        snprintf(wal, sizeof(wal), "%s-wal", path_of("plain.db"));
        ck_assert_int_eq(access(wal, F_OK), 0);
        ck_assert(!file_has_key(wal, v0, 256, 16));
        ck_assert(!file_has_key(wal, v1, 256, 16));
        ck_assert(!file_has_key(wal, v2, 256, 16));
        store_close(s);
        ck_assert(!file_has_key(path_of("plain.db"), v0, 256, 16));
        ck_assert(!file_has_key(path_of("plain.db"), v1, 256, 16));
        ck_assert(!file_has_key(path_of("plain.db"), v2, 256, 16));
        ck_assert(!file_has_key(wal, v2, 256, 16));
        /* The search itself works: the raw vault is found in a file that holds it. */
        write_file("plain.bin", v1, sizeof(v1), 0600);
        ck_assert(file_has_key(path_of("plain.bin"), v1, 256, 16));
}
END_TEST

/*
 * A VFS shim counting syncs of the write-ahead log and of the database, to check the
 * durability rule itself: a pending vault is synced before the call returns, a commit is not,
 * and a batch costs one sync.
 */
START_TEST(test_durability) {
        struct store *s;
        uint8_t v[64 * 16];

        ck_assert_int_eq(vfs_count_install(4096), SQLITE_OK);
        s = open_new("sync.db");
        enroll(s, "a", 0, 1);
        enroll(s, "b", 0, 2);
        ck_assert_int_gt(vfs_count.wal_syncs, 0);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(s, "a", enr(s, "a"), 0, v, sizeof(v)), 0);

        vfs_count.wal_syncs = vfs_count.db_syncs = 0;
        ck_assert_int_eq(store_commit(s, "a", enr(s, "a"), 0, 1), 0);
        ck_assert_int_eq(store_audit(s, 1, "a", "peer", "ok", 1), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 0);
        ck_assert_int_eq(plain_set_pending(s, "a", enr(s, "a"), 1, v, sizeof(v)), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 1);
        ck_assert_int_eq(plain_promote_and_set_pending(s, "a", enr(s, "a"), 1, v, sizeof(v)), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 2);

        /* A batch holding pending vaults is synced once, even if not asked to be. */
        vfs_count.wal_syncs = 0;
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(plain_set_pending(s, "b", enr(s, "b"), 0, v, sizeof(v)), 0);
        ck_assert_int_eq(store_commit(s, "a", enr(s, "a"), 2, 2), 0);
        ck_assert_int_eq(store_record_failure(s, "b", 2), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 0);
        ck_assert_int_eq(store_batch_commit(s, false), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 1);

        /* Commits alone are not synced, unless asked. */
        vfs_count.wal_syncs = 0;
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_commit(s, "b", enr(s, "b"), 0, 3), 0);
        ck_assert_int_eq(store_batch_commit(s, false), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 0);
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_record_failure(s, "b", 4), 0);
        ck_assert_int_eq(store_batch_commit(s, true), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 1);
        /* A batch holding an aggregate is synced too: its answer leaves after the commit. */
        vfs_count.wal_syncs = 0;
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(store_aggregate_add(s, "temp", 21.5, &(struct aggregate) { 0 }), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 0);
        ck_assert_int_eq(store_batch_commit(s, false), 0);
        ck_assert_int_eq(vfs_count.wal_syncs, 1);
        /* No checkpoint ran meanwhile: the database file itself was never synced. */
        ck_assert_int_eq(vfs_count.db_syncs, 0);
        store_close(s);
        vfs_count_remove();
}
END_TEST

/* The --db value chooses the back end: PostgreSQL connection strings are refused with a clear
 * message (and without echoing them: they may hold a password) until that back end exists;
 * a file name with '=' in it stays a SQLite file. */
START_TEST(test_backend_choice) {
#ifdef HAVE_LIBPQ
        /* Each names a socket directory where no server listens: claimed by PostgreSQL, which
         * fails to connect (and never reaches a server of the machine). */
        static const char *const pre[] = {
                "postgresql://u:secret@/vault?host=", "postgres:///vault?host=", "dbname=vault host=",
                "password=secret host=", " user = sv host = ",
        };
        const char *dir = tmpdir, *post = "/none";
        const int want = -EIO;
#else
        static const char *const pre[] = {
                "postgresql://u:secret@localhost/vault", "postgres://localhost", "dbname=vault",
                "host=/run/postgresql dbname=vault password=secret", " user = sv",
        };
        const char *dir = "", *post = "";
        const int want = -EPROTONOSUPPORT;
#endif
        struct store *s = NULL;
        char pg[512];

        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
                snprintf(pg, sizeof pg, "%s%s%s", pre[i], dir, post);
                ck_assert_int_eq(store_open(pg, key1, STORE_CREATE, &s), want);
                ck_assert_ptr_null(s);
                ck_assert_msg(strstr(store_last_error(NULL), "PostgreSQL"), "%s", store_last_error(NULL));
                ck_assert_ptr_null(strstr(store_last_error(NULL), "secret"));
        }
        s = open_new("a=b.db");
        store_close(s);
        ck_assert_int_eq(access(path_of("a=b.db"), F_OK), 0);
}
END_TEST

#ifdef HAVE_LIBPQ
/* The PostgreSQL back end's own checks, with SQL of PostgreSQL (SV_TEST_STORE_DB only). */

/* Missing, foreign, newer and corrupt databases are refused like SQLite files. */
START_TEST(test_pg_open_errors) {
        struct store *s = NULL;
        uint8_t c[64 * 16];
        struct store_device d;

        ck_assert_int_eq(store_open(db_of("pgempty"), key1, 0, &s), -ENOENT);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(strstr(store_last_error(NULL), "never initialised"));
        db_of("pgforeign");             /* the schema */
        PQclear(pg_raw("pgforeign", "CREATE TABLE foreign_rows (x int)"));
        ck_assert_int_eq(store_open(db_of("pgforeign"), key1, STORE_CREATE, &s), -EBADMSG);
        ck_assert_ptr_null(s);

        s = open_new("pgnewer");
        enroll(s, "dev", 0, 1);
        store_close(s);
        s = NULL;
        PQclear(pg_raw("pgnewer", "UPDATE meta SET schema_version = schema_version + 1"));
        ck_assert_int_eq(store_open(db_of("pgnewer"), key1, 0, &s), -EPROTONOSUPPORT);
        ck_assert_ptr_null(s);
        PQclear(pg_raw("pgnewer", "UPDATE meta SET schema_version = schema_version - 1"));

        /* A flipped bit in a stored vault fails authentication. */
        s = reopen("pgnewer", key1);
        assert_committed(s, "dev", 1);
        PQclear(pg_raw("pgnewer", "UPDATE vault SET blob = set_byte(blob, 40, get_byte(blob, 40) # 1)"));
        ck_assert_int_eq(store_get(s, "dev", &d, c, NULL, sizeof(c)), -EBADMSG);
        store_close(s);
}
END_TEST

/* What PostgreSQL holds is sealed: no 16-byte run of a vault appears in any row, and each
 * blob is the vault's length plus the AEAD's overhead. */
START_TEST(test_pg_no_plaintext) {
        struct store *s = open_new("pgplain");
        uint8_t v[64 * 16], next[64 * 16];
        char sql[512], hex[33];

        enroll(s, "dev", 0, 7);
        fill(v, sizeof(v), 7);
        next_vault(8, next);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, next, sizeof(next)), 0);
        store_close(s);
        ck_assert_int_eq(pg_int("pgplain", "SELECT count(*) FROM vault"), 2);
        ck_assert_int_eq(pg_int("pgplain", "SELECT count(*) FROM vault WHERE octet_length(blob) <> 64 * 16 + 28"), 0);
        for (size_t off = 0; off + 16 <= sizeof(v); off += 16)
                for (int which = 0; which < 2; which++) {
                        const uint8_t *src = which ? next : v;

                        for (int i = 0; i < 16; i++)
                                snprintf(hex + 2 * i, 3, "%02x", src[off + i]);
                        snprintf(sql, sizeof(sql), "SELECT count(*) FROM vault WHERE position(decode('%s', 'hex') in blob) > 0", hex);
                        ck_assert_int_eq(pg_int("pgplain", sql), 0);
                }
}
END_TEST

/* Two connections (two servers) on one database: the compare-and-set on the epoch lets only
 * the first commit from a generation; the second sees -ESTALE and changes nothing. */
/* A schema 1 database (no session claims) is upgraded when opened, its devices kept. */
START_TEST(test_pg_schema_upgrade_v1) {
        struct store *s = open_new("pgv1");
        PGresult *res;

        enroll(s, "dev", 0, 1);
        store_close(s);
        PQclear(pg_raw("pgv1", "ALTER TABLE device DROP COLUMN claim_owner, DROP COLUMN claim_epoch,"
                       " DROP COLUMN claim_until; DROP TABLE backoff; UPDATE meta SET schema_version = 1"));
        s = reopen("pgv1", key1);
        res = pg_raw("pgv1", "SELECT schema_version FROM meta");
        ck_assert_str_eq(PQgetvalue(res, 0, 0), "3");
        PQclear(res);
        ck_assert_int_eq(pg_int("pgv1", "SELECT count(*) FROM backoff"), 0);
        assert_claimed_session(s);
}
END_TEST

/* A schema 2 database (no shared back-off) gets its backoff table when opened. */
START_TEST(test_pg_schema_upgrade_v2) {
        struct store *s = open_new("pgv2");

        enroll(s, "dev", 0, 1);
        store_close(s);
        PQclear(pg_raw("pgv2", "DROP TABLE backoff; UPDATE meta SET schema_version = 2"));
        s = reopen("pgv2", key1);
        ck_assert_int_eq(pg_int("pgv2", "SELECT schema_version FROM meta"), 3);
        ck_assert_int_eq(pg_int("pgv2", "SELECT count(*) FROM backoff"), 0);
        ck_assert(store_has_shared_backoff(s));
        store_close(s);
}
END_TEST

/* The shared back-off (store.h): failures written by one connection are read by another's
 * lookup, for an enrolled id and an unknown one alike (a stand-in row); the delay doubles per
 * failure; a reset removes the keys; prune forgets keys idle for BACKOFF_FORGET_MS. */
START_TEST(test_pg_shared_backoff) {
        struct store *a = open_new("pgbo"), *b;
        struct store_backoff bo = { 0 }, other = { 0 };
        struct store_device d;
        uint8_t blob[2 * 64 * 16 + 64];
        size_t len = 0;
        int64_t h1, h2;

        enroll(a, "dev", 0, 1);
        b = reopen("pgbo", key1);
        ck_assert_int_eq(store_backoff_hash(a, "id:dev", &h1), 0);
        ck_assert_int_eq(store_backoff_hash(b, "id:dev", &h2), 0);
        ck_assert(h1 == h2);                            /* same master key: same key on every server */
        ck_assert_int_eq(store_backoff_hash(a, "id:dew", &h2), 0);
        ck_assert(h1 != h2);
        ck_assert_int_eq(store_backoff_hash(a, "peer:10.0.0", &bo.key[STORE_BACKOFF_NET]), 0);
        ck_assert_int_eq(store_backoff_hash(a, "idnet:dev@10.0.0", &bo.key[STORE_BACKOFF_ID_NET]), 0);
        bo.key[STORE_BACKOFF_ID] = h1;
        other = bo;

        ck_assert_int_eq(store_lookup_sealed(b, "dev", 0, 0, &bo, &d, blob, sizeof(blob), &len), 0);
        ck_assert(!bo.present && bo.wait_ms == 0 && bo.id_wait_ms == 0);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(store_backoff_failure(a, bo.key, _STORE_BACKOFF_KEYS), 0);
        ck_assert_int_eq(pg_int("pgbo", "SELECT max(failures) FROM backoff"), 4);
        ck_assert_int_eq(store_lookup_sealed(b, "dev", 0, 0, &bo, &d, blob, sizeof(blob), &len), 0);
        ck_assert(bo.present);
        /* 4 failures: 25 ms * 2^3 = 200 ms, less what the statements took. */
        ck_assert_msg(bo.wait_ms > 100 && bo.wait_ms <= 200, "wait %lld", (long long) bo.wait_ms);
        ck_assert_msg(bo.id_wait_ms > 100 && bo.id_wait_ms <= 200, "id wait %lld", (long long) bo.id_wait_ms);
        /* An unknown id reads its own keys on the stand-in row (device 1). */
        ck_assert_int_eq(store_backoff_hash(a, "id:nobody", &other.key[STORE_BACKOFF_ID]), 0);
        ck_assert_int_eq(store_backoff_failure(a, &other.key[STORE_BACKOFF_ID], 1), 0);
        ck_assert_int_eq(store_lookup_sealed(b, "nobody", 0, 1, &other, &d, blob, sizeof(blob), &len), -ENOENT);
        ck_assert(other.present && other.id_wait_ms > 0 && other.id_wait_ms <= 25);
        ck_assert_msg(other.wait_ms > 100 && other.wait_ms <= 200, "wait %lld", (long long) other.wait_ms);

        ck_assert_int_eq(store_backoff_reset(a, bo.key, _STORE_BACKOFF_KEYS), 0);
        ck_assert_int_eq(store_lookup_sealed(b, "dev", 0, 0, &bo, &d, blob, sizeof(blob), &len), 0);
        ck_assert(!bo.present && bo.wait_ms == 0);
        ck_assert_int_eq(pg_int("pgbo", "SELECT count(*) FROM backoff"), 1);
        ck_assert_int_eq(store_backoff_prune(a, 100), 0);
        PQclear(pg_raw("pgbo", "UPDATE backoff SET next_ms = next_ms - 16 * 60 * 1000"));
        ck_assert_int_eq(store_backoff_prune(a, 100), 1);
        ck_assert_int_eq(pg_int("pgbo", "SELECT count(*) FROM backoff"), 0);
        store_close(a);
        store_close(b);
}
END_TEST

START_TEST(test_pg_two_connections) {
        struct store *a = open_new("pgtwo"), *b;
        uint8_t next[64 * 16];
        uint64_t e;

        enroll(a, "dev", 0, 1);
        b = reopen("pgtwo", key1);
        e = enr(b, "dev");
        next_vault(2, next);
        ck_assert_int_eq(plain_set_pending(a, "dev", e, 0, next, sizeof(next)), 0);
        ck_assert_int_eq(store_commit(a, "dev", e, 0, 5), 0);
        ck_assert_int_eq(store_commit(b, "dev", e, 0, 6), -ESTALE);
        ck_assert_int_eq(plain_set_pending(b, "dev", e, 0, next, sizeof(next)), -ESTALE);
        ck_assert_int_eq(plain_promote_and_set_pending(b, "dev", e, 0, next, sizeof(next)), -ESTALE);
        assert_vault(b, "dev", 2, -1);
        store_close(a);
        store_close(b);
}
END_TEST

/* store_lock_serving(): shared by any number of servers, exclusive for a migration's source,
 * each refused (-EBUSY) while the other kind is held, and free again when the holders close
 * (on PostgreSQL when their sessions have ended, which the store waits a moment for). */
START_TEST(test_serving_lock) {
        struct store *a = open_new("serving"), *b = reopen("serving", key1), *m = reopen("serving", key1);

        ck_assert_int_eq(store_lock_serving(a, false), 0);
        ck_assert_int_eq(store_lock_serving(b, false), 0);
        ck_assert_int_eq(store_lock_serving(a, false), -EALREADY);
        ck_assert_int_eq(store_lock_serving(m, true), -EBUSY);
        ck_assert_msg(strstr(store_last_error(m), "An authserver serves this database"), "%s", store_last_error(m));
        store_close(a);
        ck_assert_int_eq(store_lock_serving(m, true), -EBUSY);
        store_close(b);
        ck_assert_int_eq(store_lock_serving(m, true), 0);
        a = reopen("serving", key1);
        ck_assert_int_eq(store_lock_serving(a, false), -EBUSY);
        ck_assert_msg(strstr(store_last_error(a), "authserver migrate is copying"), "%s", store_last_error(a));
        ck_assert_int_eq(store_lock_serving(a, true), -EBUSY);
        store_close(m);
        ck_assert_int_eq(store_lock_serving(a, false), 0);
        store_close(a);
}
END_TEST

/* This process's POSIX (fcntl) locks on the file at path, counted in /proc/locks. */
static int posix_locks_held(const char *path) {
        char line[256];
        struct stat st;
        int n = 0;
        FILE *f;

        ck_assert_int_eq(stat(path, &st), 0);
        f = fopen("/proc/locks", "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f)) {
                char kind[16];
                long pid;
                unsigned maj, min;
                unsigned long ino;

                if (sscanf(line, "%*[^:]: %15s %*s %*s %ld %x:%x:%lu", kind, &pid, &maj, &min, &ino) == 5 &&
                    strcmp(kind, "POSIX") == 0 && pid == (long) getpid() && ino == (unsigned long) st.st_ino &&
                    maj == major(st.st_dev) && min == minor(st.st_dev))
                        n++;
        }
        fclose(f);
        return n;
}

/* A serving lock refused on SQLite leaves the file's descriptor open until the connection is
 * closed: closing any descriptor of the file would drop every POSIX lock SQLite's connections
 * of this process hold on it (a WAL connection holds a shared one for its whole life). */
START_TEST(test_serving_lock_refused_keeps_sqlite_locks) {
        struct store *m = open_new("servkeep"), *a = reopen("servkeep", key1);
        const char *path = db_of("servkeep");

        ck_assert_int_eq(store_lock_serving(m, true), 0);
        ck_assert_int_ge(posix_locks_held(path), 1);
        ck_assert_int_eq(store_lock_serving(a, false), -EBUSY);
        ck_assert_msg(posix_locks_held(path) >= 1, "SQLite's locks on %s were dropped by the refusal", path);
        ck_assert_int_eq(store_lock_serving(a, false), -EBUSY);
        store_close(m);
        ck_assert_int_eq(store_lock_serving(a, false), 0);
        store_close(a);
}
END_TEST

/* Drops every other client connection of the test database (the stores'). */
static const char *const kill_others =
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'";

/* A connection the server dropped: the call that finds it fails with -EIO, the next one
 * reconnects; inside a batch the batch is lost (-ENOTCONN at its commit: authserver goes on,
 * a fail-over), never half committed. */
START_TEST(test_pg_reconnect) {
        struct store *s = open_new("pgconn");
        uint8_t next[64 * 16];
        struct store_device d;
        int r;

        enroll(s, "dev", 0, 1);
        ck_assert_int_ge(pg_int(NULL, kill_others), 1);
        r = store_get(s, "dev", &d, NULL, NULL, 0);
        ck_assert_msg(r == -EIO, "after the kill: %d %s", r, store_last_error(s));
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);

        ck_assert_int_eq(store_batch_begin(s), 0);
        next_vault(2, next);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, next, sizeof(next)), 0);
        ck_assert_int_ge(pg_int(NULL, kill_others), 1);
        ck_assert_int_lt(store_commit(s, "dev", d.enrollment, 0, 5), 0);
        ck_assert_int_eq(store_batch_commit(s, true), -ENOTCONN);
        assert_vault(s, "dev", 1, -1);
        store_close(s);
}
END_TEST

/* A server whose session is cut while a migration takes the serving lock does nothing on the
 * database when it reconnects (-EBUSY), until the migration has ended. */
START_TEST(test_pg_serving_lock_reconnect) {
        struct store *s = open_new("pgserving"), *m;
        struct store_device d;
        int r;

        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_lock_serving(s, false), 0);
        ck_assert_int_ge(pg_int(NULL, kill_others), 1);
        m = reopen("pgserving", key1);
        ck_assert_int_eq(store_lock_serving(m, true), 0);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), -EIO);
        r = store_get(s, "dev", &d, NULL, NULL, 0);
        ck_assert_msg(r == -EBUSY, "reconnected during the migration: %d %s", r, store_last_error(s));
        store_close(m);
        /* The migration's session ends a moment after store_close(); meanwhile the server's
         * calls fail (and reconnect with back-off), none succeeds without the lock. */
        for (int i = 0; i < 100 && (r = store_get(s, "dev", &d, NULL, NULL, 0)) != 0; i++) {
                ck_assert_msg(r == -EBUSY || r == -EAGAIN || r == -ENOTCONN || r == -EIO, "%d %s", r,
                              store_last_error(s));
                usleep(50 * 1000);
        }
        ck_assert_msg(r == 0, "no read after the migration ended: %d %s", r, store_last_error(s));
        m = reopen("pgserving", key1);
        ck_assert_int_eq(store_lock_serving(m, true), -EBUSY);
        store_close(m);
        store_close(s);
}
END_TEST

/* A server that stops answering at a batch's COMMIT (its backend SIGSTOPped: the socket stays
 * open, nothing is refused): the store gives up after its bound (statement_timeout 5 s + 5 s
 * with STORE_HANDSHAKE), drops the connection, and the batch is lost with it, -ENOTCONN as
 * after a lost connection (whether it was committed is unknown; authserver goes on), not the
 * -EIO of a failed sync that stops authserver; the next call reconnects. */
START_TEST(test_pg_commit_timeout) {
        struct store *s = NULL;
        uint8_t next[64 * 16];
        struct store_device d;
        int64_t pid;
        int r;

        r = store_open(db_of("pgstall"), key1, STORE_CREATE | STORE_HANDSHAKE, &s);
        ck_assert_msg(r == 0, "store_open: %d %s", r, store_last_error(NULL));
        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_batch_begin(s), 0);
        next_vault(2, next);
        ck_assert_int_eq(plain_set_pending(s, "dev", enr(s, "dev"), 0, next, sizeof(next)), 0);
        pid = pg_int(NULL, "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname ="
                     " current_database() AND backend_type = 'client backend' AND state = 'idle in transaction'");
        ck_assert_int_eq(kill((pid_t) pid, SIGSTOP), 0);
        r = store_batch_commit(s, true);
        (void) kill((pid_t) pid, SIGCONT);
        ck_assert_msg(r == -ENOTCONN, "the unanswered commit: %d %s", r, store_last_error(s));
        ck_assert_msg(strstr(store_last_error(s), "did not answer within 10 s"), "%s", store_last_error(s));
        r = store_get(s, "dev", &d, NULL, NULL, 0);
        ck_assert_msg(r == 0, "after the time-out: %d %s", r, store_last_error(s));
        store_close(s);
}
END_TEST

/* A reconnection whose setup fails (here: the statements cannot be prepared while the table
 * is renamed) leaves the session not ready: the next call redoes the setup instead of running
 * statements that were never prepared. */
START_TEST(test_pg_reconnect_setup) {
        struct store *s = open_new("pgready");
        struct store_device d;
        int r;

        enroll(s, "dev", 0, 1);
        PQclear(pg_raw("pgready", "ALTER TABLE device RENAME TO device_away"));
        ck_assert_int_ge(pg_int(NULL, kill_others), 1);
        ck_assert_int_lt(store_get(s, "dev", &d, NULL, NULL, 0), 0);       /* finds the lost connection */
        r = store_get(s, "dev", &d, NULL, NULL, 0);                         /* reconnects, setup fails */
        ck_assert_msg(r < 0, "setup without the table: %d", r);
        PQclear(pg_raw("pgready", "ALTER TABLE device_away RENAME TO device"));
        r = store_get(s, "dev", &d, NULL, NULL, 0);
        ck_assert_msg(r == 0, "after the table came back: %d %s", r, store_last_error(s));
        ck_assert_int_eq(pg_int("pgready", "SELECT count(*) FROM device"), 1);
        store_close(s);
}
END_TEST

/* An admin's transaction holds the device row past the lock time-out while a batch writes:
 * PostgreSQL refuses the write and the batch is rolled back whole with -ECANCELED (not the
 * -EIO of a failed sync, which stops authserver); once the lock is gone the next batch works. */
START_TEST(test_pg_batch_lock_timeout) {
        struct store *s = open_new("pglock");
        PGconn *admin;
        PGresult *res;
        uint8_t next[64 * 16];
        uint64_t e;
        char sql[160];
        int r;

        enroll(s, "dev", 0, 1);
        e = enr(s, "dev");
        admin = PQconnectdb(pg_base());
        ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "connect: %s", PQerrorMessage(admin));
        snprintf(sql, sizeof(sql), "BEGIN; SELECT id FROM %s.device WHERE id = 'dev' FOR UPDATE", store_name("pglock"));
        res = PQexec(admin, sql);
        ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "%s", PQerrorMessage(admin));
        PQclear(res);

        next_vault(2, next);
        ck_assert_int_eq(store_batch_begin(s), 0);
        r = plain_set_pending(s, "dev", e, 0, next, sizeof(next));
        ck_assert_msg(r == -EBUSY, "behind the admin's lock: %d %s", r, store_last_error(s));
        r = store_batch_commit(s, true);
        ck_assert_msg(r == -ECANCELED, "the refused batch: %d %s", r, store_last_error(s));
        assert_vault(s, "dev", 1, -1);

        PQclear(PQexec(admin, "ROLLBACK"));
        PQfinish(admin);
        ck_assert_int_eq(store_batch_begin(s), 0);
        ck_assert_int_eq(plain_set_pending(s, "dev", e, 0, next, sizeof(next)), 0);
        ck_assert_int_eq(store_batch_commit(s, true), 0);
        ck_assert_int_eq(store_commit(s, "dev", e, 0, 5), 0);
        assert_vault(s, "dev", 2, -1);
        store_close(s);
}
END_TEST
#endif

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

/* HKDF-Expand(key, info, 32) through OpenSSL's own KDF: the reference the store's derivation must equal. */
static void ref_expand(const uint8_t *key, size_t key_len, const char *info, uint8_t out[32]) {
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) key, key_len),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, strlen(info)),
                OSSL_PARAM_construct_end(),
        };

        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(EVP_KDF_derive(ctx, out, 32, params), 1);
        EVP_KDF_CTX_free(ctx);
        EVP_KDF_free(kdf);
}

/* The at-rest keys are HKDF-Expand(master, label || id, 32) byte for byte (blobs sealed before
 * store-crypto.c computed them without EVP_MAC must still open): the keyed hash, and a sealed
 * blob opened by hand with the device key derived by OpenSSL's HKDF. */
START_TEST(test_aead_key_derivation) {
        uint8_t master[STORE_MASTER_KEY_LEN], got[32], want[32], key[32];
        uint8_t vault[64], blob[64 + STORE_BLOB_OVERHEAD], plain[64], ad[64];
        const char *id = "dev-kdf-0001";
        struct store_aead *a = NULL;
        EVP_CIPHER_CTX *ctx;
        size_t adl;
        int len;

        for (size_t i = 0; i < sizeof master; i++)
                master[i] = (uint8_t) (i * 7 + 1);
        for (size_t i = 0; i < sizeof vault; i++)
                vault[i] = (uint8_t) i;
        ck_assert_int_eq(store_aead_new(master, &a), 0);
        ck_assert_int_eq(store_aead_keyed_hash(a, "sv1 test hash", id, got), 0);
        ref_expand(master, sizeof master, "sv1 test hashdev-kdf-0001", want);
        ck_assert_mem_eq(got, want, 32);

        ck_assert_int_eq(store_aead_seal(a, id, 0x0102030405060708ull, vault, sizeof vault, blob), 0);
        ref_expand(master, sizeof master, "sv1 store keydev-kdf-0001", key);
        adl = strlen(id);
        memcpy(ad, id, adl);
        for (int i = 0; i < 8; i++)
                ad[adl++] = (uint8_t) (i + 1);
        memcpy(ad + adl, "sv1 store vault", 15);
        adl += 15;
        ctx = EVP_CIPHER_CTX_new();
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, blob, NULL), 1);
        ck_assert_int_eq(EVP_DecryptUpdate(ctx, NULL, &len, ad, (int) adl), 1);
        ck_assert_int_eq(EVP_DecryptUpdate(ctx, plain, &len, blob + STORE_BLOB_IV_LEN, (int) sizeof vault), 1);
        ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, STORE_BLOB_TAG_LEN,
                                             blob + STORE_BLOB_IV_LEN + sizeof vault), 1);
        ck_assert_int_eq(EVP_DecryptFinal_ex(ctx, plain + len, &len), 1);
        ck_assert_mem_eq(plain, vault, sizeof vault);
        EVP_CIPHER_CTX_free(ctx);
        store_aead_free(a);
}
END_TEST

/* store_copy() (authserver migrate): every row of a SQLite store into the back end under
 * test and from there into a new SQLite file, the vaults copied sealed and still opening;
 * a non-empty target and one under another master key are refused, unchanged. */
static int copy_list_cb(const struct store_device *d, void *userdata) {
        char *buf = userdata;
        size_t l = strlen(buf);

        snprintf(buf + l, 4096 - l, "%s %d %u/%u/%u/%u e%llu p%d c%lld s%lld f%lld x%u k%u t%llx\n", d->id,
                 (int) d->status, d->profile, d->n, d->m, d->p, (unsigned long long) d->epoch, d->has_pending,
                 (long long) d->created, (long long) d->last_success, (long long) d->last_failure, d->failures,
                 d->kex, (unsigned long long) d->enrollment);
        return 0;
}

static int copy_aggregate_cb(const struct aggregate *a, void *userdata) {
        char *buf = userdata;
        size_t l = strlen(buf);

        snprintf(buf + l, 4096 - l, "%s %llu %a %a %a\n", a->name, (unsigned long long) a->count, a->sum, a->min,
                 a->max);
        return 0;
}

static void copy_describe(struct store *s, char buf[4096]) {
        buf[0] = 0;
        ck_assert_int_eq(store_list(s, copy_list_cb, buf), 0);
        ck_assert_int_eq(store_aggregate_list(s, copy_aggregate_cb, buf), 0);
}

START_TEST(test_copy) {
        struct store *src = NULL, *dst, *back = NULL, *other = NULL;
        struct store_copy_counts n = { 0 };
        struct aggregate a;
        char want[4096], got[4096];
        uint64_t count = 1;
        uint8_t v[64 * 16];

        ck_assert_int_eq(store_open(path_of("copysrc.db"), key1, STORE_CREATE, &src), 0);
        enroll(src, "a", 0, 1);
        enroll(src, "b", 7, 2);
        next_vault(3, v);
        ck_assert_int_eq(plain_set_pending(src, "b", enr(src, "b"), 7, v, sizeof(v)), 0);
        enroll(src, "c", 0, 4);
        ck_assert_int_eq(store_revoke(src, "c"), 1);
        ck_assert_int_eq(store_add_failures(src, "a", 3, 500), 0);
        ck_assert_int_eq(store_audit(src, 100, "a", "127.0.0.1:1", "ok", 1), 0);
        ck_assert_int_eq(store_audit(src, 101, NULL, "127.0.0.2:2", "unknown", UINT64_MAX), 0);
        ck_assert_int_eq(store_audit_summary(src, 102, "bad-m1", 5), 0);
        ck_assert_int_eq(store_aggregate_add(src, "temp", 21.5, &a), 0);
        ck_assert_int_eq(store_aggregate_add(src, "temp", -3.25, &a), 0);
        copy_describe(src, want);

        dst = open_new("copydst.db");
        ck_assert_msg(store_copy(src, dst, &n) == 0, "%s", store_last_error(dst));
        ck_assert_uint_eq(n.devices, 3);
        ck_assert_uint_eq(n.vaults, 3);
        ck_assert_uint_eq(n.audit, 2);
        ck_assert_uint_eq(n.summaries, 1);
        ck_assert_uint_eq(n.aggregates, 1);
        copy_describe(dst, got);
        ck_assert_str_eq(got, want);
        assert_vault(dst, "a", 1, -1);
        assert_vault(dst, "b", 2, 3);

        /* Refused, nothing written: a target that holds data, one under another key. */
        ck_assert_int_eq(store_copy(src, dst, &n), -ENOTEMPTY);
        ck_assert_ptr_nonnull(strstr(store_last_error(dst), "not empty"));
        copy_describe(dst, got);
        ck_assert_str_eq(got, want);
        ck_assert_int_eq(store_open(path_of("copyother.db"), key2, STORE_CREATE, &other), 0);
        ck_assert_int_eq(store_copy(src, other, &n), -EKEYREJECTED);
        ck_assert_int_eq(store_count(other, &count), 0);
        ck_assert_uint_eq(count, 0);

        /* And back into a new SQLite file, where the device goes on from its pending vault. */
        ck_assert_int_eq(store_open(path_of("copyback.db"), key1, STORE_CREATE, &back), 0);
        ck_assert_msg(store_copy(dst, back, &n) == 0, "%s", store_last_error(back));
        ck_assert_uint_eq(n.audit, 2);
        ck_assert_uint_eq(n.summaries, 1);
        copy_describe(back, got);
        ck_assert_str_eq(got, want);
        ck_assert_int_eq(store_commit(back, "b", enr(back, "b"), 7, 9), 0);
        assert_vault(back, "b", 3, -1);
        store_close(back);
        store_close(other);
        store_close(dst);
        store_close(src);
}
END_TEST

/* Adds the n tests of tests to a new TCase of name, or counts them as not run. Not even
 * created when not run: a TCase outside the suite is never freed. */
static unsigned add_tcase(Suite *s, const char *name, const TTest *const *tests, size_t n, bool run) {
        TCase *tc;

        if (!run)
                return (unsigned) n;
        tc = tcase_create(name);
        tcase_set_timeout(tc, 60);
        for (size_t i = 0; i < n; i++)
                tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
        return 0;
}

#define ADD_TCASE(s, name, tests, run) add_tcase((s), (name), (tests), sizeof(tests) / sizeof((tests)[0]), (run))
struct audit_seen {
        unsigned n;
        int64_t times[8];
        char devices[8][STORE_ID_MAX + 1];
        char outcomes[8][32];
        uint64_t epochs[8];
};

static int collect_audit(int64_t time, const char *device, const char *peer, const char *outcome, uint64_t epoch,
                         void *userdata) {
        struct audit_seen *a = userdata;

        ck_assert(peer && peer[0]);
        ck_assert_uint_lt(a->n, 8);
        a->times[a->n] = time;
        snprintf(a->devices[a->n], sizeof a->devices[0], "%s", device);
        snprintf(a->outcomes[a->n], sizeof a->outcomes[0], "%s", outcome);
        a->epochs[a->n++] = epoch;
        return 0;
}

/* store_audit_list(): every back end, by device and since, oldest first; NULL device as "". */
START_TEST(test_audit_list) {
        struct store *s = open_new("auditlist.db");
        struct audit_seen a = { 0 };

        enroll(s, "dev", 0, 1);
        ck_assert_int_eq(store_audit(s, 300, "dev", "192.0.2.1:4444", "ok", 5), 0);
        ck_assert_int_eq(store_audit(s, 100, "dev", "192.0.2.1:4443", "enrolled", 0), 0);
        ck_assert_int_eq(store_audit(s, 200, NULL, "192.0.2.9:1", "protocol", 0), 0);
        ck_assert_int_eq(store_audit(s, 400, "other", "admin", "revoked", UINT64_MAX), 0);
        ck_assert_int_eq(store_audit_list(s, NULL, 0, collect_audit, &a), 0);
        ck_assert_uint_eq(a.n, 4);
        ck_assert(a.times[0] == 100 && a.times[1] == 200 && a.times[2] == 300 && a.times[3] == 400);
        ck_assert_str_eq(a.devices[1], "");
        ck_assert_str_eq(a.outcomes[0], "enrolled");
        ck_assert_uint_eq(a.epochs[3], UINT64_MAX);
        a = (struct audit_seen) { 0 };
        ck_assert_int_eq(store_audit_list(s, "dev", 0, collect_audit, &a), 0);
        ck_assert_uint_eq(a.n, 2);
        ck_assert_str_eq(a.outcomes[1], "ok");
        ck_assert_uint_eq(a.epochs[1], 5);
        a = (struct audit_seen) { 0 };
        ck_assert_int_eq(store_audit_list(s, "dev", 101, collect_audit, &a), 0);
        ck_assert_uint_eq(a.n, 1);
        a = (struct audit_seen) { 0 };
        ck_assert_int_eq(store_audit_list(s, NULL, 401, collect_audit, &a), 0);
        ck_assert_uint_eq(a.n, 0);
        store_close(s);
}
END_TEST

/* store_commit_audited(): the commit and its audit row together (on PostgreSQL one statement);
 * a commit that does not match writes neither, and a superseded one neither. */
START_TEST(test_commit_audited) {
        struct store *s = open_new("commitaudit.db");
        struct audit_seen a = { 0 };
        uint8_t next[64 * 16];
        bool audited = true;
        uint64_t e;

        enroll(s, "dev", 0, 1);
        e = enr(s, "dev");
        next_vault(2, next);
        ck_assert_int_eq(store_commit_audited(s, "dev", e, 0, 50, "192.0.2.1:1", &audited), -ESTALE);
        ck_assert(!audited);
        ck_assert_int_eq(plain_set_pending(s, "dev", e, 0, next, sizeof(next)), 0);
        ck_assert_int_eq(store_commit_audited(s, "dev", e ^ 1, 0, 60, "192.0.2.1:2", &audited), -ESTALE);
        ck_assert(!audited);
        ck_assert_int_eq(store_commit_audited(s, "dev", e, 0, 70, "192.0.2.1:3", &audited), 0);
        ck_assert(audited);
        assert_vault(s, "dev", 2, -1);
        ck_assert_int_eq(store_commit_audited(s, "dev", e, 0, 80, "192.0.2.1:4", &audited), -ESTALE);
        ck_assert_int_eq(store_audit_list(s, "dev", 0, collect_audit, &a), 0);
        ck_assert_uint_eq(a.n, 1);
        ck_assert(a.times[0] == 70);
        ck_assert_str_eq(a.outcomes[0], "ok");
        ck_assert_uint_eq(a.epochs[0], 1);
        store_close(s);
}
END_TEST

/* STORE_NO_KEY: the rows without the master key, never a vault. */
START_TEST(test_no_key) {
        struct store *s = open_new("nokey.db");
        struct seen seen = { .stop_at = -1 };
        struct store_device d;
        uint8_t v[64 * 16];

        enroll(s, "dev", 0, 1);
        store_close(s);
        ck_assert_int_eq(store_open(db_of("nokey.db"), NULL, 0, &s), -EINVAL);
        ck_assert_int_eq(store_open(db_of("nokey.db"), key1, STORE_NO_KEY, &s), -EINVAL);
        ck_assert_int_eq(store_open(db_of("nokey.db"), NULL, STORE_NO_KEY | STORE_CREATE, &s), -EINVAL);
        ck_assert_int_eq(store_open(db_of("nokey.db"), NULL, STORE_NO_KEY, &s), 0);
        ck_assert_int_eq(store_list(s, collect, &seen), 0);
        ck_assert_int_eq(seen.n, 1);
        ck_assert_int_eq(store_get(s, "dev", &d, NULL, NULL, 0), 0);
        ck_assert_uint_eq(d.n, 64);
        ck_assert_int_lt(store_get(s, "dev", &d, v, NULL, sizeof v), 0);
        fill(v, sizeof v, 9);
        d.id[0] = 'x';
        ck_assert_int_lt(store_enroll(s, &d, v, sizeof v, 1), 0);
        ck_assert_int_eq(store_audit(s, 1, "dev", "admin", "read", 0), 0);
        store_close(s);
}
END_TEST

static Suite *store_suite(void) {
        Suite *s = suite_create("store");
        TCase *tc = tcase_create("store");
        /* Every back end, reaching into the store with SQL both speak (raw_reachable()). */
        const TTest *const raw[] = {
                test_generation_rows, test_aggregates, test_tamper, test_swap, test_revoke, test_kex,
                test_decoys, test_audit_prune, test_audit, test_epoch_limits,
        };
        /* SQLite's files only (see the top of this file): file modes, the WAL, the VFS counts,
         * SQLite's own errors and triggers, the upgrades of old SQLite schemas. */
        const TTest *const sqlite_files[] = {
                test_create_reopen, test_schema_upgrade_v4, test_schema_upgrade_v5, test_schema_upgrade_v6,
                test_half_done_write,
                test_schema_newer, test_garbage, test_missing, test_schema_upgrade, test_schema_upgrade_v2,
                test_schema_upgrade_v3, test_no_plaintext_on_disk, test_durability, test_backend_choice,
                test_serving_lock_refused_keeps_sqlite_locks,
        };
        unsigned not_run;

        /* Every back end. */
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_aead_key_derivation);
        tcase_add_test(tc, test_sealed_writes);
        tcase_add_test(tc, test_master_key_create_load);
        tcase_add_test(tc, test_master_key_permissions);
        tcase_add_test(tc, test_master_key_hex);
        tcase_add_test(tc, test_enroll_get);
        tcase_add_test(tc, test_enroll_duplicate);
        tcase_add_test(tc, test_bad_input);
        tcase_add_test(tc, test_compare_and_set);
        tcase_add_test(tc, test_promote);
        tcase_add_test(tc, test_claims);
        tcase_add_test(tc, test_wrong_master_key);
        tcase_add_test(tc, test_reenroll_stale_session);
        tcase_add_test(tc, test_get_sealed);
        tcase_add_test(tc, test_lookup_row_choice);
        tcase_add_test(tc, test_list_count);
        tcase_add_test(tc, test_audit_list);
        tcase_add_test(tc, test_commit_audited);
        tcase_add_test(tc, test_no_key);
        tcase_add_test(tc, test_batch);
        tcase_add_test(tc, test_copy);
        tcase_add_test(tc, test_serving_lock);
#ifdef HAVE_LIBPQ
        if (pg_base()) {
                tcase_add_test(tc, test_pg_open_errors);
                tcase_add_test(tc, test_pg_no_plaintext);
                tcase_add_test(tc, test_pg_two_connections);
                tcase_add_test(tc, test_pg_schema_upgrade_v1);
                tcase_add_test(tc, test_pg_schema_upgrade_v2);
                tcase_add_test(tc, test_pg_shared_backoff);
                tcase_add_test(tc, test_pg_reconnect);
                tcase_add_test(tc, test_pg_reconnect_setup);
                tcase_add_test(tc, test_pg_serving_lock_reconnect);
                tcase_add_test(tc, test_pg_commit_timeout);
                tcase_add_test(tc, test_pg_batch_lock_timeout);
        }
#endif
        suite_add_tcase(s, tc);
        not_run = ADD_TCASE(s, "raw", raw, raw_reachable());
        if (not_run)
                fprintf(stderr, "# SV_TEST_STORE_DB names stores the tests cannot reach with SQL: %u tests "
                        "are not run\n", not_run);
        not_run = ADD_TCASE(s, "sqlite", sqlite_files, !test_db());
        if (not_run)
                fprintf(stderr, "# SV_TEST_STORE_DB is set: the %u tests of SQLite's files are not run\n", not_run);
        return s;
}

int main(void) {
        const char *base = getenv("TMPDIR");
        SRunner *sr;
        int failed;

#ifndef HAVE_LIBPQ
        if (test_db() && store_path_is_postgresql(test_db())) {
                printf("1..0 # SKIP SV_TEST_STORE_DB is PostgreSQL but this build has no PostgreSQL store\n");
                return 0;
        }
#endif
        snprintf(tmpdir, sizeof(tmpdir), "%s/check_store.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        sr = srunner_create(store_suite());
        srunner_set_tap(sr, "-");
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return failed ? 1 : 0;
}
