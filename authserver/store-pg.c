/* SPDX-License-Identifier: MIT */

/*
 * The device store's PostgreSQL back end (libpq), chosen by a --db value that is a libpq
 * connection string (store_path_is_postgresql()). See store-backend.h for the contract of
 * every op and store-pg-schema.h for the tables; the decisions worth knowing:
 *
 * Durability. The session runs with synchronous_commit off, so that a commit does not wait
 * for the WAL flush: PROTOCOL.md §6 needs a pending vault durable before M4 leaves, while a
 * lost M5 commit is recovered by the protocol. A durable write (and a batch holding one)
 * sets synchronous_commit back to the server's level (at least on) with SET LOCAL just
 * before its COMMIT, which then returns only once the WAL up to it, every earlier
 * asynchronous commit included, is flushed (and on a synchronous standby if the server says
 * so). A batch is one transaction and one flush: the group commit.
 *
 * Compare-and-set. As in SQLite, every update carries the epoch and the enrollment token it
 * expects in its WHERE clause and is one statement; under READ COMMITTED an UPDATE that waited
 * for a concurrent one re-checks its WHERE clause on the new row, and the pending vault's
 * INSERT ... SELECT locks the device row (FOR SHARE) against a concurrent commit.
 *
 * Errors. An SQL error aborts PostgreSQL's whole transaction: inside a batch any failed
 * statement therefore breaks the batch, which batch_commit() rolls back (-ECANCELED: nothing
 * of it is committed, the next batch may succeed). SQLSTATEs map
 * to -errno (errno_from_sqlstate()); a lost connection, or an answer that did not come within
 * the store's bound (await(): the connection is then dropped), is -EIO (-ENOTCONN from batch_commit),
 * and the next call outside a batch reconnects (PQreset(): with a multi-host string libpq
 * tries every host again), with back-off, and only to a server it can write (fail-over).
 *
 * Hygiene. Only sealed blobs reach the server (bytea, sent and read in binary). Messages name
 * the database and host, never the connection string, which may hold a password.
 */

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libpq-fe.h>

#include "cleanup.h"
#include "store.h"
#include "store-backend.h"
#include "store-pg-schema.h"

#define PG_LOCK_TIMEOUT         "2s"    /* as SQLite's busy timeout: the loop must not stall */
/*
 * Time-outs (docs/install.md, "On PostgreSQL"). libpq waits for ever by default: for a
 * connection, for an answer. Unless the connection string (or PGCONNECT_TIMEOUT) sets them,
 * a connection attempt gives up after PG_CONNECT_TIMEOUT per host, and TCP keepalives find a
 * dead peer in about a minute. A statement runs at most PG_STATEMENT_TIMEOUT_SERVE_MS in a
 * serving authserver (a handshake's statements take milliseconds), PG_STATEMENT_TIMEOUT_ADMIN_MS
 * in an admin verb (list reads the whole fleet); and since a server that stopped (SIGSTOP, a
 * frozen VM) never cancels anything, the store itself waits for an answer at most
 * PG_REPLY_GRACE_MS longer, then drops the connection (-EIO).
 */
#define PG_CONNECT_TIMEOUT      "10"    /* s */
#define PG_KEEPALIVES_IDLE      "30"    /* s of silence before the first probe */
#define PG_KEEPALIVES_INTERVAL  "10"    /* s between probes */
#define PG_KEEPALIVES_COUNT     "3"     /* probes unanswered: the connection is dead */
#define PG_STATEMENT_TIMEOUT_SERVE_MS   5000
#define PG_STATEMENT_TIMEOUT_ADMIN_MS   300000
#define PG_REPLY_GRACE_MS       5000
#define PG_LEVEL_MAX            16      /* "remote_apply" */
#define PG_PARAMS_MAX           13
/* Reconnection back-off (ensure_connected()): first wait, doubled after each failure, cap. */
#define PG_RETRY_MIN_MS         50
#define PG_RETRY_MAX_MS         2000
/* serve --server-id: how long its lock is waited for at start (a predecessor's session that
 * PostgreSQL has not yet seen end); store_lock_serving(): how long a lock held the other way
 * is (a server or a migration that has just ended); how often both are tried meanwhile. */
#define PG_IDENTITY_WAIT_MS     10000
#define PG_SERVING_WAIT_MS      1000
#define PG_LOCK_POLL_MS         50
/* pg_advisory_xact_lock() key of the schema creation: "sv" "sc" */
#define PG_SCHEMA_LOCK          "7576657363"
/* The session advisory lock key of store_lock_serving(): "sv" "sr" */
#define PG_SERVING_LOCK         "7576657372"

/* Every column a statement returns is cast to one of these, read in binary. */
#define ROW_COLUMNS \
        "d.status, d.profile::int8, d.n::int8, d.m::int8, d.p::int8, d.epoch, p.epoch, d.created, " \
        "d.last_success, d.last_failure, d.failures, d.enrollment, d.kex::int8, c.epoch"
#define ROW_NCOLUMNS 14
#define ROW_FROM \
        " FROM device d LEFT JOIN vault c ON c.slot = d.num * 2 + (d.epoch & 1)" \
        " LEFT JOIN vault p ON p.slot = d.num * 2 + 1 - (d.epoch & 1)"
/* The database's clock in unix ms, the clock of the session claims (one for every server). */
#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::int8"
/* The vault slot of generation epoch_param (an int8 parameter) of the device row dev. */
#define SLOT_OF(dev, epoch_param) dev ".num * 2 + (" epoch_param "::int8 & 1)"

enum {
        STMT_GET,
        STMT_PROBE,
        STMT_ENROLL,
        STMT_SET_PENDING,
        STMT_SET_PENDING_CLAIMED,
        STMT_PROMOTE,
        STMT_COMMIT,
        STMT_COMMIT_AUDITED,
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
        STMT_LOOKUP_BACKOFF,
        STMT_BACKOFF_FAILURE,
        STMT_BACKOFF_RESET,
        STMT_BACKOFF_PRUNE,
        STMT_SUMMARY,
        STMT_PRUNE_AUDIT,
        STMT_PRUNE_SUMMARY,
        STMT_DATA_VERSION,
        STMT_AGGREGATE_GET,
        STMT_AGGREGATE_PUT,
        STMT_AGGREGATE_LIST,
        STMT_KEYCHECK,
        _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
        /* One row, or two with the same device columns: one per generation of the device. */
        [STMT_GET] =
                "SELECT d.id, " ROW_COLUMNS ", v.epoch, v.blob" ROW_FROM
                " LEFT JOIN vault v ON v.slot IN (d.num * 2, d.num * 2 + 1) WHERE d.id = $1::text",
        [STMT_PROBE] =
                "SELECT d.status, d.epoch, p.epoch IS NOT NULL, d.n::int8 * d.m, d.enrollment, d.claim_owner,"
                " d.claim_owner <> 0 AND d.claim_until >= " NOW_MS " FROM device d"
                " LEFT JOIN vault p ON p.slot = d.num * 2 + 1 - (d.epoch & 1) WHERE d.id = $1::text",
        [STMT_ENROLL] =
                "INSERT INTO device AS o (id, status, profile, n, m, p, epoch, created, enrollment, kex)"
                " VALUES ($1::text, 'active', $2::int8, $3::int8, $4::int8, $5::int8, $6::int8, $7::int8,"
                " $8::int8, $9::int8)"
                " ON CONFLICT (id) DO UPDATE SET status = 'active', profile = excluded.profile, n = excluded.n,"
                " m = excluded.m, p = excluded.p, epoch = excluded.epoch, created = excluded.created,"
                " last_success = 0, last_failure = 0, failures = 0, enrollment = excluded.enrollment,"
                " kex = excluded.kex WHERE o.status = 'revoked'",
        /* The compare-and-set and the write in one statement, the device row locked against a
         * concurrent commit: the pending generation $3 goes in only if the row is still the
         * one the session read. It replaces an older pending one. */
        [STMT_SET_PENDING] =
                "INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("d", "$3") ", $3::int8, $4::bytea"
                " FROM device d WHERE d.id = $1::text AND d.epoch = $2::int8 AND d.status = 'active'"
                " AND d.n::int8 * d.m = $5::int8 AND d.enrollment = $6::int8 FOR SHARE OF d"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        /* With the session claim, one statement still: the device row's UPDATE is the
         * compare-and-set (row-locked, re-checked against a concurrent writer's version) and
         * takes the claim (free, owner $7's, or expired), and the INSERT writes the vault. */
        [STMT_SET_PENDING_CLAIMED] =
                "WITH c AS (UPDATE device d SET claim_owner = $7::int8, claim_epoch = $2::int8,"
                " claim_until = " NOW_MS " + $8::int8"
                " WHERE d.id = $1::text AND d.epoch = $2::int8 AND d.status = 'active'"
                " AND d.n::int8 * d.m = $5::int8 AND d.enrollment = $6::int8"
                " AND (d.claim_owner IN (0, $7::int8) OR d.claim_until < " NOW_MS ") RETURNING d.num)"
                " INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("c", "$3") ", $3::int8, $4::bytea FROM c"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        /* With owner $6 (0: none) the claim is checked and taken; one of the epoch $2 may be
         * taken over (the device proved the vault its session stored). */
        [STMT_PROMOTE] =
                "UPDATE device SET epoch = $3::int8,"
                " claim_owner = CASE $6::int8 WHEN 0 THEN claim_owner ELSE $6::int8 END,"
                " claim_epoch = CASE $6::int8 WHEN 0 THEN claim_epoch ELSE $3::int8 END,"
                " claim_until = CASE $6::int8 WHEN 0 THEN claim_until ELSE " NOW_MS " + $7::int8 END"
                " WHERE id = $1::text AND epoch = $2::int8 AND status = 'active' AND n::int8 * m = $4::int8"
                " AND enrollment = $5::int8"
                " AND ($6::int8 = 0 OR claim_owner IN (0, $6::int8) OR claim_epoch = $2::int8"
                "  OR claim_until < " NOW_MS ")"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "$3") " AND epoch = $3::int8)",
        /* Under owner $6's claim (0: any), which it releases. */
        [STMT_COMMIT] =
                "UPDATE device SET epoch = $3::int8, last_success = $4::int8, failures = 0, claim_owner = 0,"
                " claim_until = 0"
                " WHERE id = $1::text AND epoch = $2::int8 AND status = 'active' AND enrollment = $5::int8"
                " AND ($6::int8 = 0 OR claim_owner = $6::int8)"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "$3") " AND epoch = $3::int8)",
        /* STMT_COMMIT, the old generation's erasure and the audit row in one statement (one
         * round trip instead of three): the count of device rows it committed, 0 or 1. */
        [STMT_COMMIT_AUDITED] =
                "WITH u AS (UPDATE device SET epoch = $3::int8, last_success = $4::int8, failures = 0,"
                " claim_owner = 0, claim_until = 0"
                " WHERE id = $1::text AND epoch = $2::int8 AND status = 'active' AND enrollment = $5::int8"
                " AND ($6::int8 = 0 OR claim_owner = $6::int8)"
                " AND EXISTS (SELECT 1 FROM vault WHERE slot = " SLOT_OF("device", "$3") " AND epoch = $3::int8)"
                " RETURNING num),"
                " x AS (DELETE FROM vault v USING u WHERE v.slot = " SLOT_OF("u", "$2") "),"
                " a AS (INSERT INTO audit (time, device, peer, outcome, epoch)"
                " SELECT $4::int8, $1::text, $7::text, 'ok', $3::int8 FROM u)"
                " SELECT count(*)::int8 FROM u",
        [STMT_VAULT_PUT] =
                "INSERT INTO vault (slot, epoch, blob) SELECT " SLOT_OF("d", "$2") ", $2::int8, $3::bytea"
                " FROM device d WHERE d.id = $1::text"
                " ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, blob = excluded.blob",
        [STMT_VAULT_DROP] =
                "DELETE FROM vault v USING device d WHERE d.id = $1::text AND v.slot = " SLOT_OF("d", "$2"),
        [STMT_VAULT_CLEAR] =
                "DELETE FROM vault v USING device d WHERE d.id = $1::text AND v.slot IN (d.num * 2, d.num * 2 + 1)",
        [STMT_REVOKE] = "UPDATE device SET status = 'revoked' WHERE id = $1::text AND status = 'active'",
        [STMT_RELEASE] = "UPDATE device SET claim_owner = 0, claim_until = 0"
                " WHERE id = $1::text AND claim_owner = $2::int8 AND claim_epoch = $3::int8",
        [STMT_FAILURE] =
                "UPDATE device SET failures = LEAST(failures + $3::int8, 4294967295),"
                " last_failure = GREATEST(last_failure, $2::int8) WHERE id = $1::text",
        [STMT_AUDIT] =
                "INSERT INTO audit (time, device, peer, outcome, epoch)"
                " VALUES ($1::int8, $2::text, $3::text, $4::text, $5::int8)",
        [STMT_LIST] = "SELECT d.id, " ROW_COLUMNS ROW_FROM " ORDER BY d.id",
        [STMT_COUNT] = "SELECT count(*)::int8 FROM device",
        [STMT_SHAPES] =
                "SELECT profile::int8, n::int8, m::int8, p::int8, count(*)::int8, min(num) FROM device"
                " WHERE status = 'active' GROUP BY profile, n, m, p ORDER BY profile, n, m, p",
        /* The device's row, or else the stand-in's, in one statement that names the row it
         * reads (num is the key): no row order to rely on, and the same work for every id,
         * the id's index probed, then one row read by its number. */
        [STMT_LOOKUP] =
                "SELECT d.id = $1::text, d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM
                " WHERE d.num = COALESCE((SELECT num FROM device WHERE id = $1::text), $2::int8)",
        /* STMT_LOOKUP and the shared back-off of its keys: the longest wait left under the
         * network and id-from-network keys ($3, $4), and under the id's ($5); NULL: no row. */
        [STMT_LOOKUP_BACKOFF] =
                "SELECT d.id = $1::text, d.id, " ROW_COLUMNS ", c.blob, p.blob,"
                " (SELECT max(b.next_ms) - " NOW_MS " FROM backoff b WHERE b.key IN ($3::int8, $4::int8)),"
                " (SELECT b.next_ms - " NOW_MS " FROM backoff b WHERE b.key = $5::int8)" ROW_FROM
                " WHERE d.num = COALESCE((SELECT num FROM device WHERE id = $1::text), $2::int8)",
        /* A failure under key: the delay doubles from BACKOFF_BASE_MS up to BACKOFF_MAX_MS, as
         * backoff.c's, from now or from a later start already set. */
        [STMT_BACKOFF_FAILURE] =
                "INSERT INTO backoff AS b (key, failures, next_ms) VALUES ($1::int8, 1, " NOW_MS " + "
                PG_STR(BACKOFF_BASE_MS) ") ON CONFLICT (key) DO UPDATE SET failures = LEAST(b.failures + 1, 1000000),"
                " next_ms = GREATEST(b.next_ms, " NOW_MS " + LEAST(" PG_STR(BACKOFF_BASE_MS) " * power(2, LEAST(b.failures, 20)),"
                " " PG_STR(BACKOFF_MAX_MS) ")::int8)",
        [STMT_BACKOFF_RESET] = "DELETE FROM backoff WHERE key = $1::int8",
        [STMT_BACKOFF_PRUNE] =
                "DELETE FROM backoff WHERE key IN"
                " (SELECT key FROM backoff WHERE next_ms < " NOW_MS " - $1::int8 LIMIT $2::int8)",
        [STMT_SUMMARY] = "INSERT INTO audit_summary (time, outcome, count) VALUES ($1::int8, $2::text, $3::int8)",
        [STMT_PRUNE_AUDIT] =
                "DELETE FROM audit WHERE id IN"
                " (SELECT id FROM audit WHERE time < $1::int8 ORDER BY time LIMIT $2::int8)",
        [STMT_PRUNE_SUMMARY] =
                "DELETE FROM audit_summary WHERE id IN"
                " (SELECT id FROM audit_summary WHERE time < $1::int8 ORDER BY time LIMIT $2::int8)",
        [STMT_DATA_VERSION] = "SELECT data_version FROM meta WHERE id = 1",
        /* Locked against other writers until the transaction ends. */
        [STMT_AGGREGATE_GET] = "SELECT count, sum, min, max FROM aggregate WHERE name = $1::text FOR UPDATE",
        [STMT_AGGREGATE_PUT] =
                "INSERT INTO aggregate (name, count, sum, min, max)"
                " VALUES ($1::text, $2::int8, $3::float8, $4::float8, $5::float8)"
                " ON CONFLICT (name) DO UPDATE SET count = excluded.count, sum = excluded.sum,"
                " min = excluded.min, max = excluded.max",
        [STMT_AGGREGATE_LIST] = "SELECT name, count, sum, min, max FROM aggregate ORDER BY name",
        [STMT_KEYCHECK] = "SELECT keycheck FROM meta WHERE id = 1",
};

struct store_db {
        struct store *s;                /* for store_fail() */
        PGconn *conn;
        char durable_level[PG_LEVEL_MAX];       /* synchronous_commit of a durable commit */
        bool ready;                     /* session_settings() and session_setup() succeeded */
        bool in_batch;
        bool batch_sync;                /* the open batch holds a durable write or an aggregate */
        bool batch_broken;              /* a statement of the open batch failed: roll it back */
        bool reset;                     /* the session is on a server it cannot write: connect again */
        int64_t retry_at_ms;            /* no reconnection attempt before this (CLOCK_MONOTONIC) */
        int64_t retry_ms;               /* the back-off: 0 after a success */
        bool timed_out;                 /* await() dropped the connection: no answer in time */
        bool set_statement_timeout;     /* the connection string's options do not set them */
        bool set_lock_timeout;
        int statement_timeout_ms;
        int reply_ms;                   /* the longest await() waits for an answer */
        int64_t identity;               /* serve --server-id: the claim owner whose lock this session holds */
        enum { SERVING_NONE, SERVING_SHARED, SERVING_EXCLUSIVE } serving;       /* the serving lock held */
};

/* The parameters of one statement, all sent in binary. */
struct params {
        int n;
        const char *val[PG_PARAMS_MAX];
        int len[PG_PARAMS_MAX];
        int fmt[PG_PARAMS_MAX];
        uint64_t be[PG_PARAMS_MAX];     /* the int8 and float8 values, big-endian */
};

static void par_i64(struct params *p, int64_t v) {
        p->be[p->n] = htobe64((uint64_t) v);
        p->val[p->n] = (const char *) &p->be[p->n];
        p->len[p->n] = 8;
        p->fmt[p->n++] = 1;
}

static void par_u64(struct params *p, uint64_t v) {
        par_i64(p, (int64_t) v);        /* the bit pattern, as SQLite stores it */
}

static void par_f64(struct params *p, double v) {
        uint64_t u;

        memcpy(&u, &v, sizeof u);
        par_i64(p, (int64_t) u);
}

/* text (NULL: SQL NULL) or bytea: the bytes themselves. */
static void par_bytes(struct params *p, const void *v, size_t len) {
        p->val[p->n] = v;
        p->len[p->n] = (int) len;
        p->fmt[p->n++] = 1;
}

static void par_text(struct params *p, const char *v) {
        par_bytes(p, v, v ? strlen(v) : 0);
}

static int64_t col_i64(const PGresult *res, int row, int col) {
        uint64_t v;

        if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
                return 0;
        memcpy(&v, PQgetvalue(res, row, col), 8);
        return (int64_t) be64toh(v);
}

static double col_f64(const PGresult *res, int row, int col) {
        uint64_t v = (uint64_t) col_i64(res, row, col);
        double d;

        memcpy(&d, &v, sizeof d);
        return d;
}

static bool col_bool(const PGresult *res, int row, int col) {
        return !PQgetisnull(res, row, col) && PQgetlength(res, row, col) == 1 && PQgetvalue(res, row, col)[0];
}

static bool col_null(const PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col);
}

/* text columns: libpq ends every value with a NUL; NULL reads as "". */
static const char *col_text(const PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

DEFINE_POINTER_CLEANUP(PGresult *, PQclear)

/* The class (first two characters) and code of PostgreSQL's SQLSTATE, as -errno. */
static int errno_from_sqlstate(const char *state) {
        static const struct {
                const char *prefix;
                int r;
        } map[] = {
                { "08", -EIO },                 /* connection exception */
                { "40001", -EBUSY },            /* serialization failure */
                { "40P01", -EBUSY },            /* deadlock detected */
                { "55P03", -EBUSY },            /* lock not available (lock_timeout) */
                { "57014", -EBUSY },            /* query canceled (statement_timeout) */
                { "53100", -ENOSPC },           /* disk full */
                { "53200", -ENOMEM },           /* out of memory */
                { "53", -EIO },                 /* insufficient resources */
                { "57P", -EIO },                /* the server is shutting down or starting */
                { "25006", -EROFS },            /* read-only transaction: a standby */
                { "42501", -EACCES },           /* insufficient privilege */
                { "28", -EACCES },              /* invalid authorization */
                { "42", -EBADMSG },             /* undefined table or column: not our schema */
                { "XX001", -EBADMSG },          /* data corrupted */
                { "XX002", -EBADMSG },          /* index corrupted */
                { "23", -EINVAL },              /* integrity constraint violation */
                { "22", -EINVAL },              /* data exception */
        };

        if (!state)
                return -EIO;
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                if (strncmp(state, map[i].prefix, strlen(map[i].prefix)) == 0)
                        return map[i].r;
        return -EIO;
}

/* libpq's messages end with a newline and may span lines; the store's are one line. */
static const char *trim(char *buf, size_t size, const char *msg) {
        size_t l;

        snprintf(buf, size, "%s", msg ? msg : "");
        for (char *c = buf; *c; c++)
                if (*c == '\n' || *c == '\t')
                        *c = ' ';
        l = strlen(buf);
        while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == ' '))
                buf[--l] = 0;
        return buf;
}

/* "Failed to <what>: <PostgreSQL's primary message>" (never the DETAIL, which quotes row
 * values); inside a batch the failure aborted the transaction: the batch is broken. */
static int fail_res(struct store_db *d, const PGresult *res, const char *what) {
        char msg[200];
        int r;

        if (d->in_batch)
                d->batch_broken = true;
        if (d->timed_out) {
                d->timed_out = false;
                return store_fail(d->s, -EIO, "Failed to %s: PostgreSQL did not answer within %d s: the "
                                  "connection was dropped", what, d->reply_ms / 1000);
        }
        if (PQstatus(d->conn) != CONNECTION_OK)
                return store_fail(d->s, -EIO, "Failed to %s: the connection to PostgreSQL was lost: %s",
                                  what, trim(msg, sizeof msg, PQerrorMessage(d->conn)));
        r = errno_from_sqlstate(res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
        return store_fail(d->s, r, "Failed to %s: %s", what,
                          trim(msg, sizeof msg, res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                                     : PQerrorMessage(d->conn)));
}

static int64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits until libpq has the next result of the command sent, at most until deadline. libpq
 * would wait for ever for a server that stopped answering over a connection that is still up;
 * past the deadline the socket is shut down (d->timed_out), which fails the command
 * (fail_res(): -EIO, "did not answer") and has the next call outside a batch reconnect.
 */
static void await_ready(struct store_db *d, int64_t deadline) {
        while (PQisBusy(d->conn)) {
                struct pollfd pfd = { .fd = PQsocket(d->conn), .events = POLLIN };
                int64_t left = deadline - now_ms();
                int r = 0;

                if (pfd.fd < 0)
                        break;
                if (left > 0)
                        r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0) {
                        d->timed_out = true;
                        (void) shutdown(pfd.fd, SHUT_RDWR);
                }
                if (!PQconsumeInput(d->conn))
                        break;
        }
}

/* The answer to the command just sent (sent: PQsend*()'s result), as PQexec() gives it: the
 * last result, or the first error; waited for at most d->reply_ms (await_ready()). */
static PGresult *await(struct store_db *d, int sent) {
        PGresult *res, *last = NULL;

        d->timed_out = false;
        if (!sent)
                return NULL;
        await_ready(d, now_ms() + d->reply_ms);
        while ((res = PQgetResult(d->conn))) {
                if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
                        PQclear(res);
                        continue;
                }
                PQclear(last);
                last = res;
        }
        return last;
}

/* Runs prepared statement which; *ret the result if it has the status want. */
static int run_stmt(struct store_db *d, int which, const struct params *p, ExecStatusType want,
                    const char *what, PGresult **ret) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        char name[16];

        snprintf(name, sizeof name, "sv%d", which);
        res = await(d, PQsendQueryPrepared(d->conn, name, p ? p->n : 0, p ? p->val : NULL, p ? p->len : NULL,
                                           p ? p->fmt : NULL, 1));
        if (!res || PQresultStatus(res) != want)
                return fail_res(d, res, what);
        *ret = TAKE_PTR(res);
        return 0;
}

/* A statement without rows: the number of rows it changed. */
static int run(struct store_db *d, int which, const struct params *p, const char *what) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r;

        r = run_stmt(d, which, p, PGRES_COMMAND_OK, what, &res);
        return r < 0 ? r : atoi(PQcmdTuples(res));
}

/* One or more SQL commands without parameters, through the simple protocol. */
static int exec(struct store_db *d, const char *sql, const char *what) {
        _cleanup_(PQclearp) PGresult *res = await(d, PQsendQuery(d->conn, sql));

        if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK))
                return fail_res(d, res, what);
        return 0;
}

/* A query without parameters that returns one int8, in text. */
static int query_i64(struct store_db *d, const char *sql, const char *what, int64_t *ret) {
        _cleanup_(PQclearp) PGresult *res = await(d, PQsendQuery(d->conn, sql));

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail_res(d, res, what);
        if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
                return store_fail(d->s, -EBADMSG, "Failed to %s: unexpected answer", what);
        *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        return 0;
}

static void rollback(struct store_db *d) {
        PGresult *res;

        if (PQtransactionStatus(d->conn) == PQTRANS_IDLE || PQstatus(d->conn) != CONNECTION_OK)
                return;
        res = await(d, PQsendQuery(d->conn, "ROLLBACK"));
        d->timed_out = false;           /* the failure that led here is the one reported */
        PQclear(res);
}

/* COMMIT, first raising synchronous_commit for this transaction if durable. */
static int commit_tx(struct store_db *d, bool durable, const char *what) {
        char sql[112];

        /* COMMIT of a failed transaction answers ROLLBACK without an error: catch it here. */
        if (PQtransactionStatus(d->conn) != PQTRANS_INTRANS) {
                rollback(d);
                return store_fail(d->s, -EIO, "Failed to %s: the transaction was aborted", what);
        }
        /* A cancel (statement_timeout) of a COMMIT waiting for a synchronous standby would end
         * the wait with a WARNING only, the commit then reported done though the standby may
         * not have it: a durable COMMIT runs without one (await() bounds it all the same: -EIO,
         * -ENOTCONN from batch_commit, and no M4 leaves either way). */
        if (durable)
                snprintf(sql, sizeof sql, "SET LOCAL synchronous_commit TO %s; SET LOCAL statement_timeout TO 0;"
                         " COMMIT", d->durable_level);
        else
                snprintf(sql, sizeof sql, "COMMIT");
        return exec(d, sql, what);
}

/*
 * A write of several statements (or a durable one) is one transaction: the open batch's, or
 * else its own. In a batch a failed statement has aborted the transaction already
 * (fail_res() marked the batch broken); a write that fails after it changed something
 * without an SQL error breaks it too.
 */
static int ensure_connected(struct store_db *d);

static int write_begin(struct store_db *d) {
        int r = ensure_connected(d);

        if (r < 0 || d->in_batch)
                return r;
        return exec(d, "BEGIN", "begin a transaction");
}

/* write_begin() and the write's first statement: the number of rows it changed. write_end()
 * ends it either way (after a failed begin too: nothing to roll back then). */
static int write_run(struct store_db *d, int which, const struct params *p, const char *what) {
        int r = write_begin(d);

        return r < 0 ? r : run(d, which, p, what);
}

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
                rc = commit_tx(d, durable, "commit the transaction");
                if (rc >= 0)
                        return r;
                r = rc;
        }
        rollback(d);
        return r;
}

/* Statements and session settings of a (re)connected session. */
static int session_setup(struct store_db *d) {
        char msg[200];
        int r;

        /* (The client encoding is UTF8 by the connection's parameters, open_db().) */
        /* A setup redone on a live session (an earlier one failed half-way) prepares anew. */
        r = exec(d, "DEALLOCATE ALL", "prepare the statements");
        if (r < 0)
                return r;
        for (size_t i = 0; i < _STMT_MAX; i++) {
                _cleanup_(PQclearp) PGresult *res = NULL;
                char name[16];

                snprintf(name, sizeof name, "sv%zu", i);
                res = await(d, PQsendPrepare(d->conn, name, stmt_sql[i], 0, NULL));
                if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
                        r = fail_res(d, res, "prepare the statements");
                        return r == -EBADMSG ? store_fail(d->s, r, "Database '%s' does not have the "
                                                          "expected schema: %s", PQdb(d->conn),
                                                          trim(msg, sizeof msg, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)))
                                             : r;
                }
        }
        return 0;
}

/* The session's defaults: asynchronous commits unless durable (see the top of this file), a
 * bounded wait for row locks, no NOTICE on stderr (the store never logs), and READ COMMITTED
 * whatever the server's default: the compare-and-set relies on its re-check of the WHERE
 * clause (a stricter level would fail those updates with serialization errors instead). */
static void notice_ignore(void *arg, const char *message) {
        (void) arg;
        (void) message;
}

static int session_settings(struct store_db *d) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        char sql[256], statement_timeout[48];
        const char *level;
        int r;

        snprintf(statement_timeout, sizeof statement_timeout, " SET statement_timeout TO %d;",
                 d->statement_timeout_ms);

        PQsetNoticeProcessor(d->conn, notice_ignore, NULL);
        res = await(d, PQsendQuery(d->conn, "SHOW synchronous_commit"));
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
                return fail_res(d, res, "read synchronous_commit");
        level = PQgetvalue(res, 0, 0);
        /* The server's level if it waits for at least the local flush, else on. */
        if (strcmp(level, "off") == 0 || strcmp(level, "local") == 0 || strlen(level) >= PG_LEVEL_MAX ||
            strspn(level, "abcdefghijklmnopqrstuvwxyz_") != strlen(level))
                level = "on";
        snprintf(d->durable_level, sizeof d->durable_level, "%s", level);
        snprintf(sql, sizeof sql, "SET synchronous_commit TO off;%s%s SET client_min_messages TO warning;"
                 " SET default_transaction_isolation TO 'read committed'",
                 d->set_lock_timeout ? " SET lock_timeout TO '" PG_LOCK_TIMEOUT "';" : "",
                 d->set_statement_timeout ? statement_timeout : "");
        r = exec(d, sql, "configure the session");
        return r;
}

/*
 * authserver never serves from a database it cannot write (issue #14: no split brain). A hot
 * standby (or a server whose sessions default to read only) answers reads from replicated rows
 * but refuses every write: serving from it would look up devices and then fail every pending
 * vault. With target_session_attrs=read-write libpq skips such a host itself; without it (one
 * host, or several without the attribute) this check fails closed: -EROFS.
 */
static int check_writable(struct store_db *d) {
        _cleanup_(PQclearp) PGresult *res = await(d, PQsendQuery(d->conn, "SHOW transaction_read_only"));

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
                return fail_res(d, res, "read transaction_read_only");
        if (strcmp(PQgetvalue(res, 0, 0), "off") == 0)
                return 0;
        return store_fail(d->s, -EROFS, "Database '%s' on host %s is read-only (a standby?): authserver "
                          "serves only from a primary it can write", PQdb(d->conn), PQhost(d->conn));
}

/*
 * A new session on a writable server (PQreset(): every host of the string again, in order),
 * at most one attempt per back-off: PG_RETRY_MIN_MS after a failure, doubled after each
 * further one up to PG_RETRY_MAX_MS, back to none after a success. In between the call fails
 * at once (-EIO), so that while no primary exists (a fail-over) neither the event loop (its
 * lookups) nor the writer (its batches) spends its time connecting.
 */
static int reconnect(struct store_db *d) {
        char msg[200];
        int64_t now = now_ms();
        int r;

        if (now < d->retry_at_ms)
                return store_fail(d->s, -EIO, "No writable PostgreSQL server: the next attempt in %lld ms",
                                  (long long) (d->retry_at_ms - now));
        PQreset(d->conn);
        if (PQstatus(d->conn) != CONNECTION_OK)
                r = store_fail(d->s, -EIO, "Failed to reconnect to PostgreSQL: %s",
                               trim(msg, sizeof msg, PQerrorMessage(d->conn)));
        else
                r = check_writable(d);
        d->reset = r < 0;
        if (r < 0) {
                d->retry_ms = d->retry_ms ? d->retry_ms * 2 : PG_RETRY_MIN_MS;
                if (d->retry_ms > PG_RETRY_MAX_MS)
                        d->retry_ms = PG_RETRY_MAX_MS;
                d->retry_at_ms = now_ms() + d->retry_ms;
                return r;
        }
        d->retry_ms = d->retry_at_ms = 0;
        return 0;
}

/* Outside a batch a lost connection is opened again (reconnect(): with back-off, on a server
 * it can write); inside one the batch is lost with it (-EIO from fail_res()). A session whose
 * setup failed (after a reset, or half-way) is not ready: the setup is redone on the next call. */
/*
 * serve --server-id (docs/architecture.md, "Many servers on one database"): the session holds
 * the id's advisory lock for as long as it lives, so that two live servers never share a claim
 * owner, and a server that died (its session gone with it) leaves the id free for its restart.
 */
static int lock_identity(struct store_db *d, int64_t owner) {
        char sql[80];
        int64_t got = 0;
        int r;

        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)::int", (long long) owner);
        r = query_i64(d, sql, "lock the server id", &got);
        if (r < 0)
                return r;
        return got == 1 ? 0 : -EADDRINUSE;
}

static int lock_serving(struct store_db *d, bool exclusive) {
        int64_t got = 0;
        int r;

        r = query_i64(d, exclusive ? "SELECT pg_try_advisory_lock(" PG_SERVING_LOCK ")::int" :
                      "SELECT pg_try_advisory_lock_shared(" PG_SERVING_LOCK ")::int", "take the serving lock", &got);
        if (r < 0)
                return r;
        if (got == 1)
                return 0;
        return store_fail(d->s, -EBUSY, exclusive ? "An authserver serves this database (its session holds the "
                          "serving lock)" : "authserver migrate is copying this database (its session holds the "
                          "serving lock)");
}

static int ensure_connected(struct store_db *d) {
        int r;

        if (PQstatus(d->conn) == CONNECTION_OK && d->ready && !d->reset)
                return 0;
        if (d->in_batch) {
                d->batch_broken = true;
                return store_fail(d->s, -EIO, "The connection to PostgreSQL was lost inside a batch");
        }
        if (PQstatus(d->conn) != CONNECTION_OK || d->reset) {
                d->ready = false;
                r = reconnect(d);
                if (r < 0)
                        return r;
        }
        r = session_settings(d);
        if (r >= 0)
                r = session_setup(d);
        /* A new session takes the server id's lock again; if another server holds it now, this
         * one writes nothing under the id until it gets it back (fail closed). */
        if (r >= 0 && d->identity) {
                r = lock_identity(d, d->identity);
                if (r == -EADDRINUSE) {
                        d->reset = true;
                        r = store_fail(d->s, r, "The server id is in use by another authserver on this "
                                       "database: this server's writes are refused until it is free");
                }
        }
        /* So is the serving lock: a server whose session came back while a migration copies the
         * database does nothing on it until the copy has ended, and tries again only after the
         * longest reconnection back-off (a migration takes a while). */
        if (r >= 0 && d->serving != SERVING_NONE) {
                r = lock_serving(d, d->serving == SERVING_EXCLUSIVE);
                if (r == -EBUSY) {
                        d->reset = true;
                        d->retry_ms = PG_RETRY_MAX_MS;
                        d->retry_at_ms = now_ms() + d->retry_ms;
                }
        }
        if (r >= 0)
                d->ready = true;
        return r;
}

/* A call's one read: connected (again) if need be, then statement which; the number of rows
 * of *ret. */
static int query(struct store_db *d, int which, const struct params *p, const char *what, PGresult **ret) {
        int r = ensure_connected(d);

        if (r >= 0)
                r = run_stmt(d, which, p, PGRES_TUPLES_OK, what, ret);
        return r < 0 ? r : PQntuples(*ret);
}

/* A call's one write of one statement, outside write_begin(): the number of rows it changed. */
static int command(struct store_db *d, int which, const struct params *p, const char *what) {
        int r = ensure_connected(d);

        return r < 0 ? r : run(d, which, p, what);
}

static int create_schema(struct store_db *d, const uint8_t *keycheck, size_t keycheck_len) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int64_t has_meta = 0, tables = 0;
        const char *val[1] = { (const char *) keycheck };
        int len[1] = { (int) keycheck_len }, fmt[1] = { 1 };
        char sql[96];
        int r;

        r = exec(d, "BEGIN; SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", "create the schema");
        if (r < 0)
                return r;
        /* Re-read under the lock: another authserver may have created it meanwhile. */
        r = query_i64(d, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                      " AND tablename = 'meta'", "create the schema", &has_meta);
        if (r >= 0)
                r = query_i64(d, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
                              "create the schema", &tables);
        if (r >= 0 && has_meta) {
                rollback(d);
                return 0;
        }
        if (r >= 0 && tables > 0)
                r = store_fail(d->s, -EBADMSG, "Database '%s' is not a secure-vault store: it has tables "
                               "but no schema version", PQdb(d->conn));
        if (r >= 0)
                r = exec(d, STORE_PG_SCHEMA_SQL, "create the schema");
        if (r >= 0) {
                snprintf(sql, sizeof sql, "INSERT INTO meta (id, schema_version, keycheck) VALUES (1, %d, $1)",
                         STORE_PG_SCHEMA_VERSION);
                res = await(d, PQsendQueryParams(d->conn, sql, 1, NULL, val, len, fmt, 1));
                if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
                        r = fail_res(d, res, "write the key check");
        }
        if (r >= 0)
                return commit_tx(d, true, "create the schema");
        rollback(d);
        return r;
}

/* Version 1 had no session claims, 2 no shared back-off. Under the schema lock, the version read again: another
 * authserver may have upgraded meanwhile. */
static int upgrade_schema(struct store_db *d) {
        int64_t version = 0;
        int r;

        r = exec(d, "BEGIN; SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", "upgrade the schema");
        if (r >= 0)
                r = query_i64(d, "SELECT schema_version FROM meta WHERE id = 1", "upgrade the schema", &version);
        if (r >= 0 && version == 1)
                r = exec(d, STORE_PG_SCHEMA_2_SQL "UPDATE meta SET schema_version = 2 WHERE id = 1",
                         "upgrade the schema to version 2");
        if (r >= 0 && version <= 2)
                r = exec(d, STORE_PG_SCHEMA_3_SQL "UPDATE meta SET schema_version = 3 WHERE id = 1",
                         "upgrade the schema to version 3");
        if (r >= 0)
                return commit_tx(d, true, "upgrade the schema");
        rollback(d);
        return r;
}

/* The value the connection string gives keyword, or NULL. */
static const char *conninfo_value(const PQconninfoOption *opts, const char *keyword) {
        for (; opts->keyword; opts++)
                if (strcmp(opts->keyword, keyword) == 0)
                        return opts->val && *opts->val ? opts->val : NULL;
        return NULL;
}

/*
 * Connects with the time-outs at the top of this file for whatever the string leaves unset:
 * they come before dbname, which libpq expands into the string's own values over them. The
 * client encoding comes after: the store reads and writes UTF-8.
 */
static int connect_db(struct store_db *d, const char *path, const PQconninfoOption *opts) {
        static const struct {
                const char *keyword, *env, *value;
        } defaults[] = {
                { "connect_timeout", "PGCONNECT_TIMEOUT", PG_CONNECT_TIMEOUT },
                { "keepalives", NULL, "1" },
                { "keepalives_idle", NULL, PG_KEEPALIVES_IDLE },
                { "keepalives_interval", NULL, PG_KEEPALIVES_INTERVAL },
                { "keepalives_count", NULL, PG_KEEPALIVES_COUNT },
        };
        const char *keywords[sizeof defaults / sizeof defaults[0] + 3], *values[sizeof defaults / sizeof defaults[0] + 3];
        const char *options = conninfo_value(opts, "options");
        size_t n = 0;

        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
                const char *env = defaults[i].env ? getenv(defaults[i].env) : NULL;

                if (conninfo_value(opts, defaults[i].keyword) || (env && *env))
                        continue;
                keywords[n] = defaults[i].keyword;
                values[n++] = defaults[i].value;
        }
        keywords[n] = "dbname";
        values[n++] = path;
        keywords[n] = "client_encoding";
        values[n++] = "UTF8";
        keywords[n] = NULL;
        values[n] = NULL;
        /* options="-c statement_timeout=..." (or lock_timeout) is the operator's choice. */
        d->set_statement_timeout = !options || !strstr(options, "statement_timeout");
        d->set_lock_timeout = !options || !strstr(options, "lock_timeout");
        d->conn = PQconnectdbParams(keywords, values, 1);
        return d->conn ? 0 : -ENOMEM;
}

static int open_db(struct store_db *d, const char *path, int flags, const uint8_t *keycheck,
                   size_t keycheck_len) {
        PQconninfoOption *opts;
        char *err = NULL, msg[200];
        int64_t has_meta = 0, tables = 0, version = 0;
        int r;

        d->statement_timeout_ms = flags & STORE_HANDSHAKE ? PG_STATEMENT_TIMEOUT_SERVE_MS
                                                          : PG_STATEMENT_TIMEOUT_ADMIN_MS;
        d->reply_ms = d->statement_timeout_ms + PG_REPLY_GRACE_MS;
        /* Parsed first so that a malformed string is refused without echoing it. */
        opts = PQconninfoParse(path, &err);
        PQfreemem(err);
        if (!opts)
                return store_fail(d->s, -EINVAL, "Invalid PostgreSQL connection string");
        r = connect_db(d, path, opts);
        PQconninfoFree(opts);
        if (r < 0)
                return store_fail(d->s, -ENOMEM, "Out of memory");
        if (PQstatus(d->conn) != CONNECTION_OK)
                return store_fail(d->s, -EIO, "Failed to connect to PostgreSQL: %s",
                                  trim(msg, sizeof msg, PQerrorMessage(d->conn)));
        r = session_settings(d);
        if (r >= 0)
                r = check_writable(d);
        if (r < 0)
                return r;

        r = query_i64(d, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                      " AND tablename = 'meta'", "read the database", &has_meta);
        if (r < 0)
                return r;
        if (!has_meta) {
                r = query_i64(d, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
                              "read the database", &tables);
                if (r < 0)
                        return r;
                if (!(flags & STORE_CREATE) || tables > 0)
                        return store_fail(d->s, tables > 0 ? -EBADMSG : -ENOENT, tables > 0 ?
                                          "Database '%s' is not a secure-vault store" :
                                          "Database '%s' is empty: it was never initialised", PQdb(d->conn));
                r = create_schema(d, keycheck, keycheck_len);
                if (r < 0)
                        return r;
        }
        r = query_i64(d, "SELECT schema_version FROM meta WHERE id = 1", "read the schema version", &version);
        if (r < 0)
                return r == -EBADMSG ? store_fail(d->s, r, "Database '%s' has no schema version: not a "
                                                  "secure-vault store", PQdb(d->conn)) : r;
        if (version > STORE_PG_SCHEMA_VERSION)
                return store_fail(d->s, -EPROTONOSUPPORT, "Database '%s' has schema version %lld, newer "
                                  "than this authserver supports (%d): upgrade authserver",
                                  PQdb(d->conn), (long long) version, STORE_PG_SCHEMA_VERSION);
        if (version < 1)
                return store_fail(d->s, -EBADMSG, "Database '%s' has an invalid schema version %lld",
                                  PQdb(d->conn), (long long) version);
        if (version < STORE_PG_SCHEMA_VERSION) {
                r = upgrade_schema(d);
                if (r < 0)
                        return r;
        }
        r = session_setup(d);
        if (r >= 0)
                d->ready = true;
        return r;
}

static void pg_close(struct store_db *d) {
        if (!d)
                return;
        if (d->conn) {
                if (d->in_batch)
                        rollback(d);
                PQfinish(d->conn);
        }
        free(d);
}

DEFINE_POINTER_CLEANUP(struct store_db *, pg_close)

static int pg_open(struct store *s, const char *path, int flags, const uint8_t *keycheck,
                   size_t keycheck_len, struct store_db **ret) {
        _cleanup_(pg_closep) struct store_db *d = NULL;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return store_fail(s, -ENOMEM, "Out of memory");
        d->s = s;
        r = open_db(d, path, flags, keycheck, keycheck_len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

static int pg_keycheck_get(struct store_db *d, uint8_t *buf, size_t cap, size_t *ret_len) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        size_t len;
        int r;

        r = query(d, STMT_KEYCHECK, NULL, "read the key check", &res);
        if (r < 0)
                return r;
        if (r != 1 || col_null(res, 0, 0))
                return -EBADMSG;
        len = (size_t) PQgetlength(res, 0, 0);
        if (len > cap)
                return -EBADMSG;
        memcpy(buf, PQgetvalue(res, 0, 0), len);
        *ret_len = len;
        return 0;
}

/* Reads ROW_COLUMNS from column first of row i, the id from column id_col. */
static void read_row(const PGresult *res, int i, int id_col, int first, struct store_row *row) {
        *row = (struct store_row) { 0 };
        store_row_text(row->id, col_text(res, i, id_col));
        store_row_text(row->status, col_text(res, i, first));
        row->profile = col_i64(res, i, first + 1);
        row->n = col_i64(res, i, first + 2);
        row->m = col_i64(res, i, first + 3);
        row->p = col_i64(res, i, first + 4);
        row->epoch = col_i64(res, i, first + 5);
        row->has_pending = !col_null(res, i, first + 6);
        row->pending_epoch = col_i64(res, i, first + 6);
        row->created = col_i64(res, i, first + 7);
        row->last_success = col_i64(res, i, first + 8);
        row->last_failure = col_i64(res, i, first + 9);
        row->failures = col_i64(res, i, first + 10);
        row->enrollment = col_i64(res, i, first + 11);
        row->kex = col_i64(res, i, first + 12);
        row->has_committed = !col_null(res, i, first + 13);
        row->committed_epoch = col_i64(res, i, first + 13);
}

/* Whether a lock attempt that found the lock held (r == busy) is made again: before deadline,
 * after a pause, since PostgreSQL ends a session a moment after its client has gone. */
static bool retry_lock(int r, int busy, int64_t deadline) {
        if (r != busy || now_ms() >= deadline)
                return false;
        (void) poll(NULL, 0, PG_LOCK_POLL_MS);
        return true;
}

static int pg_serving_lock(struct store_db *d, bool exclusive) {
        int64_t deadline = now_ms() + PG_SERVING_WAIT_MS;
        int r;

        if (d->serving != SERVING_NONE)
                return store_fail(d->s, -EALREADY, "The serving lock is already held");
        do {
                r = ensure_connected(d);
                if (r >= 0)
                        r = lock_serving(d, exclusive);
        } while (retry_lock(r, -EBUSY, deadline));
        if (r >= 0)
                d->serving = exclusive ? SERVING_EXCLUSIVE : SERVING_SHARED;
        return r;
}

/* The lock waits out a predecessor whose session PostgreSQL has not yet seen end. */
static int pg_identity(struct store_db *d, int64_t owner, uint64_t *ret_released) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int64_t deadline = now_ms() + PG_IDENTITY_WAIT_MS;
        char sql[112];
        int r;

        do {
                r = ensure_connected(d);
                if (r >= 0)
                        r = lock_identity(d, owner);
        } while (retry_lock(r, -EADDRINUSE, deadline));
        if (r == -EADDRINUSE)
                return store_fail(d->s, r, "The server id is in use by another authserver on this database "
                                  "(its PostgreSQL session holds the id's lock): give each server its own id");
        if (r < 0)
                return r;
        d->identity = owner;
        /* What the id's previous process left: its sessions ended with it. */
        snprintf(sql, sizeof sql, "UPDATE device SET claim_owner = 0, claim_until = 0 WHERE claim_owner = %lld",
                 (long long) owner);
        res = await(d, PQsendQuery(d->conn, sql));
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
                return fail_res(d, res, "release the claims of the server id's previous process");
        *ret_released = strtoull(PQcmdTuples(res), NULL, 10);
        return 0;
}

static int pg_probe(struct store_db *d, const char *id, struct store_probe *ret) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        r = query(d, STMT_PROBE, &p, "look up the device", &res);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        *ret = (struct store_probe) {
                .active = strcmp(col_text(res, 0, 0) ?: "", "active") == 0,
                .epoch = col_i64(res, 0, 1),
                .has_pending = col_bool(res, 0, 2),
                .vault_len = col_i64(res, 0, 3),
                .enrollment = col_i64(res, 0, 4),
                .claim_owner = col_i64(res, 0, 5),
                .claim_live = col_bool(res, 0, 6),
        };
        return 0;
}

/* Stores sealed as generation epoch of id, over what its slot held. */
static int vault_put(struct store_db *d, const char *id, uint64_t epoch, const uint8_t *sealed,
                     size_t sealed_len) {
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        par_u64(&p, epoch);
        par_bytes(&p, sealed, sealed_len);
        r = run(d, STMT_VAULT_PUT, &p, "store the vault");
        return r == 1 ? 0 : r < 0 ? r : store_fail(d->s, -EIO, "Failed to store the vault of device '%s'", id);
}

static int vault_clear(struct store_db *d, const char *id) {
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        r = run(d, STMT_VAULT_CLEAR, &p, "erase the vaults");
        return r < 0 ? r : 0;
}

/* $1..$6 of an enrollment or a loaded device: id, profile, n, m, p, epoch. */
static void par_device(struct params *p, const struct store_device *dev) {
        par_text(p, dev->id);
        par_i64(p, dev->profile);
        par_i64(p, dev->n);
        par_i64(p, dev->m);
        par_i64(p, dev->p);
        par_u64(p, dev->epoch);
}

static int pg_enroll(struct store_db *d, const struct store_device *dev, uint64_t enrollment, int64_t now,
                     const uint8_t *sealed, size_t sealed_len) {
        struct params p = { 0 };
        bool changed;
        int r;

        par_device(&p, dev);
        par_i64(&p, now);
        par_u64(&p, enrollment);
        par_i64(&p, dev->kex);
        r = write_run(d, STMT_ENROLL, &p, "enroll the device");
        changed = r > 0;
        /* A revoked device has no vault left; whatever a damaged database still holds goes. */
        if (r > 0)
                r = vault_clear(d, dev->id);
        if (r >= 0 && changed)
                r = vault_put(d, dev->id, dev->epoch, sealed, sealed_len);
        /* An enrolled vault is as precious as a pending one. */
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

static int pg_get(struct store_db *d, const char *id, struct store_row *ret, struct store_blob vaults[2]) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        const int epoch_col = 1 + ROW_NCOLUMNS, blob_col = 2 + ROW_NCOLUMNS;
        size_t n = 0;
        int r;

        par_text(&p, id);
        r = query(d, STMT_GET, &p, "look up the device", &res);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        read_row(res, 0, 0, 1, ret);
        if (!vaults)
                return 0;
        vaults[0].present = vaults[1].present = false;
        for (int i = 0; i < PQntuples(res); i++) {
                struct store_blob *b;

                if (col_null(res, i, epoch_col))
                        continue;
                if (n == 2)
                        return store_fail(d->s, -EBADMSG, "Device '%s' has more than two vaults", id);
                b = &vaults[n++];
                b->present = true;
                b->epoch = col_i64(res, i, epoch_col);
                b->len = (size_t) PQgetlength(res, i, blob_col);
                if (b->len <= b->cap && b->len)
                        memcpy(b->data, PQgetvalue(res, i, blob_col), b->len);
        }
        return 0;
}

static int pg_set_pending(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                          const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                          const struct store_claim *claim) {
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        par_u64(&p, expect_epoch);
        par_u64(&p, expect_epoch + 1);
        par_bytes(&p, sealed, sealed_len);
        par_i64(&p, (int64_t) vault_len);
        par_u64(&p, enrollment);
        if (claim) {
                par_i64(&p, claim->owner);
                par_i64(&p, claim->ttl_ms);
        }
        r = write_run(d, claim ? STMT_SET_PENDING_CLAIMED : STMT_SET_PENDING, &p, "store the pending vault");
        r = write_end(d, r, false, r > 0);
        return r < 0 ? r : r > 0;
}

static int pg_promote(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                      const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                      const struct store_claim *claim) {
        struct params p = { 0 };
        bool changed;
        int r;

        par_text(&p, id);
        par_u64(&p, expect_epoch);
        par_u64(&p, expect_epoch + 1);
        par_i64(&p, (int64_t) vault_len);
        par_u64(&p, enrollment);
        par_i64(&p, claim ? claim->owner : 0);
        par_i64(&p, claim ? claim->ttl_ms : 0);
        r = write_run(d, STMT_PROMOTE, &p, "promote the pending vault");
        changed = r > 0;
        /* The next generation takes the old committed generation's slot (its parity). */
        if (r > 0)
                r = vault_put(d, id, expect_epoch + 2, sealed, sealed_len);
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

/* STMT_COMMIT's parameters, STMT_COMMIT_AUDITED's first six. */
static void par_commit(struct params *p, const char *id, uint64_t enrollment, uint64_t expect_epoch, int64_t now,
                       const struct store_claim *claim) {
        par_text(p, id);
        par_u64(p, expect_epoch);
        par_u64(p, expect_epoch + 1);
        par_i64(p, now);
        par_u64(p, enrollment);
        par_i64(p, claim ? claim->owner : 0);
}

static int pg_commit(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                     int64_t now, const struct store_claim *claim) {
        struct params p = { 0 };
        bool changed;
        int r;

        par_commit(&p, id, enrollment, expect_epoch, now, claim);
        r = write_run(d, STMT_COMMIT, &p, "commit the pending vault");
        changed = r > 0;
        if (r > 0) {
                p = (struct params) { 0 };
                par_text(&p, id);
                par_u64(&p, expect_epoch);
                r = run(d, STMT_VAULT_DROP, &p, "erase the old vault");
        }
        r = write_end(d, r, changed, false);
        return r < 0 ? r : changed;
}

static int pg_commit_audited(struct store_db *d, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                             int64_t now, const struct store_claim *claim, const char *peer) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        int r;

        par_commit(&p, id, enrollment, expect_epoch, now, claim);
        par_text(&p, peer);
        r = write_begin(d);
        if (r >= 0)
                r = run_stmt(d, STMT_COMMIT_AUDITED, &p, PGRES_TUPLES_OK, "commit the pending vault", &res);
        if (r >= 0)
                r = PQntuples(res) == 1 && col_i64(res, 0, 0) > 0;
        return write_end(d, r, r > 0, false);
}

static int pg_revoke(struct store_db *d, const char *id) {
        struct params p = { 0 };
        bool changed;
        int r;

        par_text(&p, id);
        r = write_run(d, STMT_REVOKE, &p, "revoke the device");
        changed = r > 0;
        if (r > 0)
                r = vault_clear(d, id);
        /* An operator revoking a device expects it to stay revoked. */
        r = write_end(d, r, changed, changed);
        return r < 0 ? r : changed;
}

static int pg_release(struct store_db *d, const char *id, uint64_t epoch, const struct store_claim *claim) {
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        par_i64(&p, claim->owner);
        par_u64(&p, epoch);
        r = command(d, STMT_RELEASE, &p, "release the device");
        return r < 0 ? r : r > 0;
}

/* The shared back-off (store.h): writes of the open batch. */
static int pg_backoff_failure(struct store_db *d, int64_t key) {
        struct params p = { 0 };

        par_i64(&p, key);
        return command(d, STMT_BACKOFF_FAILURE, &p, "count a failure");
}

static int pg_backoff_reset(struct store_db *d, int64_t key) {
        struct params p = { 0 };

        par_i64(&p, key);
        return command(d, STMT_BACKOFF_RESET, &p, "reset the back-off");
}

static int pg_backoff_prune(struct store_db *d, int64_t forget_ms, unsigned limit) {
        struct params p = { 0 };

        par_i64(&p, forget_ms);
        par_i64(&p, limit);
        return command(d, STMT_BACKOFF_PRUNE, &p, "prune the back-off");
}

static int pg_add_failures(struct store_db *d, const char *id, uint32_t count, int64_t last) {
        struct params p = { 0 };
        int r;

        par_text(&p, id);
        par_i64(&p, last);
        par_i64(&p, count);
        r = command(d, STMT_FAILURE, &p, "record the failure");
        return r < 0 ? r : r > 0;
}

static int pg_audit(struct store_db *d, int64_t now, const char *id, const char *peer, const char *outcome,
                    uint64_t epoch) {
        struct params p = { 0 };
        int r;

        par_i64(&p, now);
        par_text(&p, id);
        par_text(&p, peer);
        par_text(&p, outcome);
        par_u64(&p, epoch);
        r = command(d, STMT_AUDIT, &p, "write the audit record");
        return r < 0 ? r : 0;
}

static int pg_audit_summary(struct store_db *d, int64_t now, const char *outcome, uint64_t count) {
        struct params p = { 0 };
        int r;

        par_i64(&p, now);
        par_text(&p, outcome);
        par_i64(&p, (int64_t) count);
        r = command(d, STMT_SUMMARY, &p, "write the audit summary");
        return r < 0 ? r : 0;
}

static int pg_audit_prune(struct store_db *d, int64_t before, unsigned limit) {
        int total = 0, r;

        for (int i = STMT_PRUNE_AUDIT; i <= STMT_PRUNE_SUMMARY && total < (int) limit; i++) {
                struct params p = { 0 };

                par_i64(&p, before);
                par_i64(&p, (int64_t) limit - total);
                r = command(d, i, &p, "prune the audit trail");
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}

/* Rare and read-only: not one of the prepared statements. */
static int pg_audit_list(struct store_db *d, const char *id, int64_t since,
                         int (*cb)(int64_t, const char *, const char *, const char *, int64_t, void *),
                         void *userdata) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        int r;

        r = ensure_connected(d);
        if (r < 0)
                return r;
        par_i64(&p, since);
        if (id)
                par_text(&p, id);
        res = await(d, PQsendQueryParams(d->conn, id ? "SELECT time, device, peer, outcome, epoch FROM audit"
                                                       " WHERE time >= $1 AND device = $2 ORDER BY time, id"
                                                     : "SELECT time, device, peer, outcome, epoch FROM audit"
                                                       " WHERE time >= $1 ORDER BY time, id",
                                         p.n, NULL, p.val, p.len, p.fmt, 1));
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail_res(d, res, "read the audit trail");
        for (int i = 0; r >= 0 && i < PQntuples(res); i++)
                r = cb(col_i64(res, i, 0), PQgetisnull(res, i, 1) ? NULL : col_text(res, i, 1), col_text(res, i, 2),
                       col_text(res, i, 3), col_i64(res, i, 4), userdata);
        return r < 0 ? r : 0;
}

static int pg_list(struct store_db *d, store_row_cb cb, void *userdata) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct store_row row;
        int r;

        r = query(d, STMT_LIST, NULL, "list the devices", &res);
        for (int i = 0; r >= 0 && i < PQntuples(res); i++) {
                read_row(res, i, 0, 1, &row);
                r = cb(&row, userdata);
        }
        return r < 0 ? r : 0;
}

/* A statement that returns one int8. */
static int query_u64(struct store_db *d, int which, const char *what, uint64_t *ret) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r;

        r = query(d, which, NULL, what, &res);
        if (r < 0)
                return r;
        if (r != 1)
                return store_fail(d->s, -EBADMSG, "Failed to %s: no answer", what);
        *ret = (uint64_t) col_i64(res, 0, 0);
        return 0;
}

static int pg_count(struct store_db *d, uint64_t *ret) {
        return query_u64(d, STMT_COUNT, "count the devices", ret);
}

static int pg_data_version(struct store_db *d, uint64_t *ret) {
        return query_u64(d, STMT_DATA_VERSION, "read the data version", ret);
}

static int pg_shapes(struct store_db *d, store_shape_row_cb cb, void *userdata) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r;

        r = query(d, STMT_SHAPES, NULL, "count the device shapes", &res);
        for (int i = 0; r >= 0 && i < PQntuples(res); i++)
                r = cb(col_i64(res, i, 0), col_i64(res, i, 1), col_i64(res, i, 2), col_i64(res, i, 3),
                       col_i64(res, i, 4), col_i64(res, i, 5), userdata);
        return r < 0 ? r : 0;
}

static int aggregate_read_fold_write(struct store_db *d, const char *name, store_fold_fn fold, void *userdata,
                                     struct aggregate *a) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        bool found;
        int r;

        par_text(&p, name);
        r = run_stmt(d, STMT_AGGREGATE_GET, &p, PGRES_TUPLES_OK, "read the aggregate", &res);
        if (r < 0)
                return r;
        found = PQntuples(res) > 0;
        if (found) {
                a->count = (uint64_t) col_i64(res, 0, 0);
                a->sum = col_f64(res, 0, 1);
                a->min = col_f64(res, 0, 2);
                a->max = col_f64(res, 0, 3);
        }
        r = fold(a, found, userdata);
        if (r < 0)
                return r;
        p = (struct params) { 0 };
        par_text(&p, name);
        par_u64(&p, a->count);
        par_f64(&p, a->sum);
        par_f64(&p, a->min);
        par_f64(&p, a->max);
        r = run(d, STMT_AGGREGATE_PUT, &p, "write the aggregate");
        return r < 0 ? r : 0;
}

/* The read and the write in one transaction (the batch's, or else its own); inside a batch
 * the answer is sent only once durable: the batch's commit waits for the flush. */
static int pg_aggregate_update(struct store_db *d, const char *name, store_fold_fn fold, void *userdata,
                               struct aggregate *a) {
        int r;

        r = write_begin(d);
        if (r < 0)
                return r;
        r = aggregate_read_fold_write(d, name, fold, userdata, a);
        r = write_end(d, r, false, false);
        if (r >= 0 && d->in_batch)
                d->batch_sync = true;
        return r < 0 ? r : 0;
}

static int pg_aggregate_list(struct store_db *d, store_aggregate_row_cb cb, void *userdata) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r;

        r = query(d, STMT_AGGREGATE_LIST, NULL, "list the aggregates", &res);
        for (int i = 0; r >= 0 && i < PQntuples(res); i++)
                r = cb(col_text(res, i, 0), col_i64(res, i, 1), col_f64(res, i, 2), col_f64(res, i, 3),
                       col_f64(res, i, 4), userdata);
        return r < 0 ? r : 0;
}

static int pg_batch_begin(struct store_db *d) {
        int r;

        if (d->in_batch)
                return store_fail(d->s, -EBUSY, "A batch is already open");
        r = ensure_connected(d);
        if (r >= 0)
                r = exec(d, "BEGIN", "begin a batch");
        if (r < 0)
                return r;
        d->in_batch = true;
        d->batch_sync = d->batch_broken = false;
        return 0;
}

static int pg_batch_commit(struct store_db *d, bool durable) {
        bool sync = durable || d->batch_sync, broken = d->batch_broken;
        int r;

        if (!d->in_batch)
                return store_fail(d->s, -EINVAL, "No batch is open");
        d->in_batch = d->batch_sync = d->batch_broken = false;
        if (PQstatus(d->conn) != CONNECTION_OK)
                return store_fail(d->s, -ENOTCONN, "The batch was lost with the connection to PostgreSQL");
        /* PostgreSQL refused a statement (a lock time-out, a deadlock, ...) and aborted the
         * transaction: nothing of the batch is committed, and the database is fine. */
        if (broken) {
                rollback(d);
                return store_fail(d->s, -ECANCELED, "The batch was rolled back: one of its writes failed");
        }
        /* As write_end(): a failed SET LOCAL leaves the transaction aborted, and every later
         * BEGIN would fail (25P02) on this connection: end it. */
        r = commit_tx(d, sync, "commit the batch");
        /* Lost, or no answer in time (await() then shut the connection): either way whether
         * PostgreSQL committed it is unknown, and the next batch reconnects (fail-over). */
        if (r < 0 && PQstatus(d->conn) != CONNECTION_OK) {
                char msg[256];

                snprintf(msg, sizeof msg, "%s", store_last_error(d->s));
                return store_fail(d->s, -ENOTCONN, "The connection to PostgreSQL was lost at the commit of "
                                  "the batch (whether it was committed is unknown): %s", msg);
        }
        if (r < 0)
                rollback(d);
        return r;
}

static int pg_batch_rollback(struct store_db *d) {
        if (!d->in_batch)
                return store_fail(d->s, -EINVAL, "No batch is open");
        d->in_batch = d->batch_sync = d->batch_broken = false;
        rollback(d);
        return 0;
}

/* The lookup reads one row whatever the id (the stand-in's for an id not enrolled), with the
 * same statement; both generations' blobs come with it, and the one pick() names is copied. */
static int pg_lookup(struct store_db *d, const char *id, int64_t stand_in, struct store_backoff *backoff,
                     store_pick_fn pick, void *userdata, struct store_row *ret, bool *ret_found, uint8_t *blob,
                     size_t cap, size_t *ret_len) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        const int committed_col = 2 + ROW_NCOLUMNS, pending_col = 3 + ROW_NCOLUMNS;
        struct params p = { 0 };
        struct store_row row;
        size_t len = 0;
        bool found;
        int r, col;

        par_text(&p, id);
        par_i64(&p, stand_in > 0 ? stand_in : -1);
        if (backoff)
                for (int i = 0; i < _STORE_BACKOFF_KEYS; i++)
                        par_i64(&p, backoff->key[i]);
        r = query(d, backoff ? STMT_LOOKUP_BACKOFF : STMT_LOOKUP, &p, "look up the device", &res);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        if (backoff) {
                backoff->present = !col_null(res, 0, pending_col + 1) || !col_null(res, 0, pending_col + 2);
                backoff->wait_ms = col_null(res, 0, pending_col + 1) ? 0 : col_i64(res, 0, pending_col + 1);
                backoff->id_wait_ms = col_null(res, 0, pending_col + 2) ? 0 : col_i64(res, 0, pending_col + 2);
                backoff->wait_ms = backoff->wait_ms > 0 ? backoff->wait_ms : 0;
                backoff->id_wait_ms = backoff->id_wait_ms > 0 ? backoff->id_wait_ms : 0;
        }
        found = col_bool(res, 0, 0);
        read_row(res, 0, 1, 2, &row);
        col = pick(&row, found, userdata) == STORE_PICK_PENDING ? pending_col : committed_col;
        if (!col_null(res, 0, col)) {
                len = (size_t) PQgetlength(res, 0, col);
                if (len <= cap)
                        memcpy(blob, PQgetvalue(res, 0, col), len);
        }
        *ret = row;
        *ret_found = found;
        *ret_len = len;
        return 0;
}

/*
 * The bulk copy (store-backend.h). dump() reads in one REPEATABLE READ, READ ONLY transaction
 * (one snapshot, no lock that holds writers off), each query in single-row mode so that a
 * fleet's blobs never sit in memory at once. A load is one batch with the four tables locked
 * against other writers (EXCLUSIVE: readers go on) before the emptiness check.
 */
#define DUMP_DEVICES_SQL "SELECT d.id, " ROW_COLUMNS ", c.blob, p.blob" ROW_FROM " ORDER BY d.id"
#define DUMP_COMMITTED  (1 + ROW_NCOLUMNS)
#define DUMP_PENDING    (2 + ROW_NCOLUMNS)
#define DUMP_AUDIT_SQL "SELECT time, device, peer, outcome, epoch FROM audit ORDER BY id"
#define DUMP_SUMMARY_SQL "SELECT time, outcome, count FROM audit_summary ORDER BY id"
#define DUMP_AGGREGATE_SQL "SELECT name, count, sum, min, max FROM aggregate ORDER BY name"
#define LOAD_LOCK_SQL "LOCK TABLE device, vault, audit, audit_summary, aggregate IN EXCLUSIVE MODE"
#define LOAD_EMPTY_SQL \
        "SELECT (EXISTS (SELECT 1 FROM device) OR EXISTS (SELECT 1 FROM audit)" \
        " OR EXISTS (SELECT 1 FROM audit_summary) OR EXISTS (SELECT 1 FROM aggregate))::int"
#define LOAD_DEVICE_SQL \
        "INSERT INTO device (id, profile, n, m, p, epoch, status, created, last_success, last_failure," \
        " failures, enrollment, kex) VALUES ($1::text, $2::int8, $3::int8, $4::int8, $5::int8, $6::int8," \
        " $7::text, $8::int8, $9::int8, $10::int8, $11::int8, $12::int8, $13::int8)"

static struct store_raw_vault raw_vault(const PGresult *res, int col, bool present, int64_t epoch) {
        if (!present || col_null(res, 0, col))
                return (struct store_raw_vault) { 0 };
        return (struct store_raw_vault) {
                .present = true,
                .epoch = (uint64_t) epoch,
                .blob = (const uint8_t *) PQgetvalue(res, 0, col),
                .len = (size_t) PQgetlength(res, 0, col),
        };
}

/* One row of one of dump()'s queries (0 devices, 1 audit, 2 summaries, 3 aggregates). */
static int dump_row(const PGresult *res, int which, const struct store_dump_ops *cb, void *userdata) {
        struct store_raw_vault v[2];
        struct store_row row;

        switch (which) {
        case 0:
                read_row(res, 0, 0, 1, &row);
                v[0] = raw_vault(res, DUMP_COMMITTED, row.has_committed, row.committed_epoch);
                v[1] = raw_vault(res, DUMP_PENDING, row.has_pending, row.pending_epoch);
                return cb->device(&row, v, userdata);
        case 1:
                return cb->audit(col_i64(res, 0, 0), col_text(res, 0, 1), col_text(res, 0, 2), col_text(res, 0, 3),
                                 col_i64(res, 0, 4), userdata);
        case 2:
                return cb->summary(col_i64(res, 0, 0), col_text(res, 0, 1), col_i64(res, 0, 2), userdata);
        default:
                return cb->aggregate(col_text(res, 0, 0), col_i64(res, 0, 1), col_f64(res, 0, 2), col_f64(res, 0, 3),
                                     col_f64(res, 0, 4), userdata);
        }
}

static int dump_query(struct store_db *d, const char *sql, int which, const struct store_dump_ops *cb,
                      void *userdata) {
        PGresult *res;
        int r = 0;

        d->timed_out = false;
        if (!PQsendQueryParams(d->conn, sql, 0, NULL, NULL, NULL, NULL, 1) || !PQsetSingleRowMode(d->conn))
                return fail_res(d, NULL, "read the database");
        /* Every result is read, the rest discarded after a failure: the connection stays usable.
         * Each row is waited for at most d->reply_ms, as await() does. */
        while (await_ready(d, now_ms() + d->reply_ms), (res = PQgetResult(d->conn))) {
                ExecStatusType st = PQresultStatus(res);

                if (r >= 0 && st == PGRES_SINGLE_TUPLE)
                        r = dump_row(res, which, cb, userdata);
                else if (r >= 0 && st != PGRES_TUPLES_OK)
                        r = fail_res(d, res, "read the database");
                PQclear(res);
        }
        return r;
}

static int pg_dump(struct store_db *d, const struct store_dump_ops *cb, void *userdata) {
        static const char *const sql[] = { DUMP_DEVICES_SQL, DUMP_AUDIT_SQL, DUMP_SUMMARY_SQL, DUMP_AGGREGATE_SQL };
        int r;

        if (d->in_batch)
                return store_fail(d->s, -EBUSY, "A batch is open");
        r = ensure_connected(d);
        if (r >= 0)
                r = exec(d, d->set_statement_timeout ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                                                       " SET LOCAL statement_timeout TO 0"
                                                     : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                         "begin a read transaction");
        for (int i = 0; r >= 0 && i < 4; i++)
                r = dump_query(d, sql[i], i, cb, userdata);
        if (r >= 0)
                return exec(d, "COMMIT", "end the read transaction");
        rollback(d);
        return r;
}

static int pg_load_begin(struct store_db *d) {
        int64_t full = 0;
        int r;

        r = pg_batch_begin(d);
        if (r < 0)
                return r;
        r = exec(d, LOAD_LOCK_SQL, "lock the tables");
        if (r >= 0)
                r = query_i64(d, LOAD_EMPTY_SQL, "read the database", &full);
        if (r >= 0 && full)
                r = -ENOTEMPTY;
        if (r < 0)
                (void) pg_batch_rollback(d);
        return r;
}

static int pg_load_device(struct store_db *d, const struct store_device *dev,
                          const struct store_raw_vault vaults[2]) {
        _cleanup_(PQclearp) PGresult *res = NULL;
        struct params p = { 0 };
        bool changed;
        int r;

        r = write_begin(d);
        if (r < 0)
                return r;
        par_device(&p, dev);
        par_text(&p, dev->status == STORE_ACTIVE ? "active" : "revoked");
        par_i64(&p, dev->created);
        par_i64(&p, dev->last_success);
        par_i64(&p, dev->last_failure);
        par_i64(&p, dev->failures);
        par_u64(&p, dev->enrollment);
        par_i64(&p, dev->kex);
        res = await(d, PQsendQueryParams(d->conn, LOAD_DEVICE_SQL, p.n, NULL, p.val, p.len, p.fmt, 1));
        r = res && PQresultStatus(res) == PGRES_COMMAND_OK ? 1 : fail_res(d, res, "add the device");
        changed = r > 0;
        for (int i = 0; r >= 0 && i < 2; i++)
                if (vaults[i].present)
                        r = vault_put(d, dev->id, vaults[i].epoch, vaults[i].blob, vaults[i].len);
        r = write_end(d, r, changed, true);
        return r < 0 ? r : 0;
}

static bool pg_claims(const char *path) {
        return store_path_is_postgresql(path);
}

static const struct store_ops pg_ops = {
        .row_locks = true,
        .open = pg_open,
        .close = pg_close,
        .keycheck_get = pg_keycheck_get,
        .get = pg_get,
        .lookup = pg_lookup,
        .probe = pg_probe,
        .enroll = pg_enroll,
        .set_pending = pg_set_pending,
        .promote = pg_promote,
        .commit = pg_commit,
        .release = pg_release,
        .commit_audited = pg_commit_audited,
        .identity = pg_identity,
        .serving_lock = pg_serving_lock,
        .backoff_failure = pg_backoff_failure,
        .backoff_reset = pg_backoff_reset,
        .backoff_prune = pg_backoff_prune,
        .revoke = pg_revoke,
        .add_failures = pg_add_failures,
        .audit = pg_audit,
        .audit_summary = pg_audit_summary,
        .audit_prune = pg_audit_prune,
        .audit_list = pg_audit_list,
        .list = pg_list,
        .count = pg_count,
        .shapes = pg_shapes,
        .aggregate_update = pg_aggregate_update,
        .aggregate_list = pg_aggregate_list,
        .batch_begin = pg_batch_begin,
        .batch_commit = pg_batch_commit,
        .batch_rollback = pg_batch_rollback,
        .data_version = pg_data_version,
        .dump = pg_dump,
        .load_begin = pg_load_begin,
        .load_device = pg_load_device,
};

const struct store_backend store_backend_pg = {
        .name = "PostgreSQL",
        .claims = pg_claims,
        .ops = &pg_ops,
};
