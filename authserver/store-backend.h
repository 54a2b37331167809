/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store's back ends: the storage primitives below store.c. store.c keeps everything that
 * does not depend on the database (the API of store.h, validation of ids, parameters and
 * lengths, sealing and opening vaults, the master key check, decoys, the error messages of
 * store.h's error codes); a back end stores rows and sealed blobs, and never sees a plaintext
 * vault or the master key.
 *
 * Each op is one SQL statement or one transaction, so that the compare-and-set of a write stays
 * in its WHERE clause and a concurrent writer (another process, another server) can never make
 * two sessions commit from the same generation.
 *
 * The contract every op keeps:
 * - Returns >= 0 on success, -errno on failure, and on failure sets the message with
 *   store_fail() (never logs); -ENOENT of get, lookup and probe and -EBADMSG of keycheck_get
 *   need none: store.c words them. Errors: -EBADMSG corrupt database or not our schema, -EBUSY
 *   database locked (after a short wait), -EIO an I/O or server failure, -ENOMEM,
 *   -ENOSPC, -EACCES, -EROFS as their names say (-EROFS also: a server that cannot be
 *   written, such as a PostgreSQL standby, which open refuses).
 * - Outside a batch, a write op is its own transaction: all of it or nothing. "Durable" means
 *   the change survives a crash of the machine once the op returned; other writes may be lost
 *   in a crash but never half applied.
 * - Inside a batch (batch_begin()), a write op is part of the batch's transaction. A durable
 *   write makes the batch's commit durable. A write that fails after it changed the database
 *   must make batch_commit() roll the whole batch back and fail with -EIO.
 * - The compare-and-set writes (set_pending, promote, commit) return 1 when they applied and 0,
 *   changing nothing, when the row did not match; store.c then calls probe() to say why.
 * - Epochs and counts are u64 values kept as the int64 bit pattern: the database never does
 *   arithmetic on them (store.c computes epoch + 1). Rows read from the database are passed
 *   up raw (struct store_row) and validated by store.c.
 * - The vaults of a device are its generations: the committed one (the row's epoch) and at
 *   most one pending one (epoch + 1). A back end keeps at most these two per device.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregate.h"
#include "store.h"

struct store_db;                        /* a back end's connection, defined by the back end */

/* A device row as read, before store.c checks it. */
struct store_row {
        char id[STORE_ID_MAX + 2];      /* a longer id is cut to STORE_ID_MAX + 1 bytes: invalid */
        char status[9];                 /* "active", "revoked"; anything longer cut to 8 bytes */
        int64_t profile, n, m, p;
        int64_t epoch;                  /* u64 bit pattern */
        int64_t created, last_success, last_failure, failures, enrollment, kex;
        bool has_committed;             /* the vault of generation committed_epoch exists */
        int64_t committed_epoch;
        bool has_pending;               /* a pending vault exists, of generation pending_epoch */
        int64_t pending_epoch;
};

/* Copies text (NULL: "") into a fixed field of struct store_row, cut to the field's size - 1
 * bytes: each field is one byte longer than its longest valid value, so that an overlong value
 * stays overlong (and fails validation) instead of becoming a valid shorter one. */
#define store_row_text(field, text) store_row_text_((field), sizeof(field), (text))
static inline void store_row_text_(char *field, size_t size, const char *text) {
        size_t l = text ? strnlen(text, size - 1) : 0;

        memcpy(field, text ? text : "", l);
        field[l] = 0;
}

/* Why a compare-and-set did not match: the row's state, read by probe(). */
struct store_probe {
        bool active;
        int64_t epoch;                  /* u64 bit pattern */
        bool has_pending;
        int64_t vault_len;              /* n * m */
        int64_t enrollment;
        int64_t claim_owner;            /* the session claim's owner (0: none) */
        bool claim_live;                /* and it has not expired */
};

/*
 * The session claim of a write (docs/architecture.md, "Many servers on one database"): the
 * rule "one session per device past M3" kept in the device row, so that it holds across
 * processes. owner is the claiming process's instance id (never 0); the claim lasts ttl_ms
 * from the write, on the database's clock. NULL: the write neither checks nor takes a claim
 * (the admin verbs, one process alone).
 */
struct store_claim {
        int64_t owner;
        int64_t ttl_ms;
};

/* A generation's sealed blob, copied out by get(). */
struct store_blob {
        uint8_t *data;                  /* cap bytes, given by store.c */
        size_t cap;
        bool present;
        int64_t epoch;                  /* u64 bit pattern */
        size_t len;                     /* may exceed cap: then data holds nothing */
};

/* Which blob lookup() copies: chosen by store.c from the row (protocol §5). */
enum store_pick {
        STORE_PICK_COMMITTED,
        STORE_PICK_PENDING,
};
typedef enum store_pick (*store_pick_fn)(const struct store_row *row, bool found, void *userdata);

typedef int (*store_row_cb)(const struct store_row *row, void *userdata);
/* A shape's row of shapes(): raw values, checked by store.c. */
typedef int (*store_shape_row_cb)(int64_t profile, int64_t n, int64_t m, int64_t p, int64_t count,
                                  int64_t stand_in, void *userdata);
/* An aggregate's row as read: count is a u64 bit pattern; name may be anything. */
typedef int (*store_aggregate_row_cb)(const char *name, int64_t count, double sum, double min, double max,
                                      void *userdata);
/* aggregate_update()'s fold: given the row read (count 0: none), writes the new one into *a. */
typedef int (*store_fold_fn)(struct aggregate *a, bool found, void *userdata);

/* dump()'s callbacks (store_dump() in store.c): the rows as read, checked by store.c. The
 * blobs of vaults[] point into the back end's memory, valid during the call only. */
struct store_dump_ops {
        int (*device)(const struct store_row *row, const struct store_raw_vault vaults[2], void *userdata);
        int (*audit)(int64_t time, const char *device, const char *peer, const char *outcome, int64_t epoch,
                     void *userdata);
        int (*summary)(int64_t time, const char *outcome, int64_t count, void *userdata);
        store_aggregate_row_cb aggregate;
};

struct store_ops {
        /* Several servers write the store at once, each batch's transaction holding the row
         * locks it took until it ends (PostgreSQL). */
        bool row_locks;
        /*
         * Connects to path, creates the schema if missing and STORE_CREATE is set (storing
         * keycheck, the sealed key check, in the same transaction), or upgrades an older one.
         * -ENOENT no store and no STORE_CREATE, -EBADMSG not a store, -EPROTONOSUPPORT schema
         * newer than STORE_SCHEMA_VERSION. s is kept for store_fail().
         */
        int (*open)(struct store *s, const char *path, int flags, const uint8_t *keycheck,
                    size_t keycheck_len, struct store_db **ret);
        /* Rolls back an open batch, frees everything. db may be NULL. */
        void (*close)(struct store_db *db);
        /* The key check stored at creation, copied into buf; -EBADMSG if there is none or it
         * is longer than cap. */
        int (*keycheck_get)(struct store_db *db, uint8_t *buf, size_t cap, size_t *ret_len);

        /* The row of id and, if vaults is not NULL, its generations' blobs in vaults[0] and
         * vaults[1] (present false for the missing ones), in any order. -ENOENT unknown id. */
        int (*get)(struct store_db *db, const char *id, struct store_row *ret, struct store_blob vaults[2]);
        /*
         * The handshake's lookup, one statement: the row of id (found), or else the row of
         * device number stand_in (not found; stand_in < 1 or no such row: -ENOENT), and the
         * blob pick() chooses copied into blob when it exists and fits cap (*ret_len its
         * length, 0 if absent). Costs the same whether id was found or not. With backoff (a
         * back end with the shared back-off only), its waits are read in the same statement.
         */
        int (*lookup)(struct store_db *db, const char *id, int64_t stand_in, struct store_backoff *backoff,
                      store_pick_fn pick, void *userdata, struct store_row *ret, bool *ret_found, uint8_t *blob,
                      size_t cap, size_t *ret_len);
        /* The state of id's row after a compare-and-set did not match; -ENOENT unknown id. */
        int (*probe)(struct store_db *db, const char *id, struct store_probe *ret);

        /* Enrolls dev (active, enrollment token, no failures) with the sealed vault of
         * generation dev->epoch, replacing a revoked row and erasing its vaults. Durable.
         * Returns 1, or 0 (nothing changed) if id is enrolled and active. */
        int (*enroll)(struct store_db *db, const struct store_device *dev, uint64_t enrollment, int64_t now,
                      const uint8_t *sealed, size_t sealed_len);
        /* Compare-and-set on (id, active, epoch = expect_epoch, n*m = vault_len, enrollment):
         * stores sealed as generation expect_epoch + 1 (the pending vault), replacing an older
         * pending one. Durable. With claim, the compare-and-set also requires the device's
         * claim free, claim->owner's or expired, and takes it (claim epoch expect_epoch). */
        int (*set_pending)(struct store_db *db, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                           const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                           const struct store_claim *claim);
        /* The same compare-and-set, also requiring the pending generation expect_epoch + 1: it
         * becomes committed (epoch := expect_epoch + 1), sealed becomes generation
         * expect_epoch + 2 (pending), and generation expect_epoch goes. One transaction, durable.
         * With claim, as set_pending, and a claim of epoch expect_epoch may also be taken over
         * (the device proved the vault that claim's session stored: its M5 is late or lost);
         * the new claim's epoch is expect_epoch + 1. */
        int (*promote)(struct store_db *db, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                       const uint8_t *sealed, size_t sealed_len, size_t vault_len,
                       const struct store_claim *claim);
        /* Compare-and-set on (id, active, epoch = expect_epoch, enrollment) with the pending
         * generation present: epoch := expect_epoch + 1, failures := 0, last_success := now,
         * and generation expect_epoch is erased. One transaction, not durable. With claim, the
         * compare-and-set also requires the claim to be claim->owner's. The claim is released. */
        int (*commit)(struct store_db *db, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                      int64_t now, const struct store_claim *claim);
        /* Releases claim->owner's claim of epoch (the M1 epoch of the session that took it):
         * its session ended without a commit. 1, or 0 if id's claim is not that one. Not
         * durable (a lost release expires). */
        /* commit(), and the audit row of its success (now, id, peer, "ok", expect_epoch + 1)
         * written with it, in one round trip (NULL: the back end has none; store.c calls
         * commit() and audit()). */
        int (*commit_audited)(struct store_db *db, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                              int64_t now, const struct store_claim *claim, const char *peer);
        int (*release)(struct store_db *db, const char *id, uint64_t epoch, const struct store_claim *claim);
        /* serve --server-id (PostgreSQL only; NULL elsewhere): this connection holds owner's
         * lock for as long as it lives, taken again on each reconnection (-EADDRINUSE while
         * another server holds it), and every claim of owner left by its previous process is
         * released (*ret_released: how many). */
        int (*identity)(struct store_db *db, int64_t owner, uint64_t *ret_released);
        /* store_lock_serving(): the database's serving lock, shared or exclusive, held while
         * the handle lives (on PostgreSQL taken again on each reconnection); -EBUSY while it is
         * held the other way (PostgreSQL waits a moment first). */
        int (*serving_lock)(struct store_db *db, bool exclusive);
        /* The shared back-off (store.h; NULL: the back end has none). */
        int (*backoff_failure)(struct store_db *db, int64_t key);
        int (*backoff_reset)(struct store_db *db, int64_t key);
        int (*backoff_prune)(struct store_db *db, int64_t forget_ms, unsigned limit);
        /* Marks an active id revoked and erases its vaults; 1 if it was active (durable), 0 if
         * nothing changed (revoked or unknown). */
        int (*revoke)(struct store_db *db, const char *id);
        /* failures := min(failures + count, 2^32-1), last_failure := max(last_failure, last).
         * 1, or 0 for an unknown id. */
        int (*add_failures)(struct store_db *db, const char *id, uint32_t count, int64_t last);

        /* Appends an audit row; id may be NULL. Not durable. */
        int (*audit)(struct store_db *db, int64_t now, const char *id, const char *peer, const char *outcome,
                     uint64_t epoch);
        int (*audit_summary)(struct store_db *db, int64_t now, const char *outcome, uint64_t count);
        /* Deletes at most limit rows, oldest first, of the audit tables older than before;
         * returns how many. */
        int (*audit_prune)(struct store_db *db, int64_t before, unsigned limit);
        /* The audit rows of id (NULL: all) at or after since, oldest first; cb's negative
         * return stops and is returned. device is NULL for a row without one. */
        int (*audit_list)(struct store_db *db, const char *id, int64_t since,
                          int (*cb)(int64_t time, const char *device, const char *peer, const char *outcome,
                                    int64_t epoch, void *userdata),
                          void *userdata);

        /* Every device row in id order (no blob read); cb's negative return stops and is
         * returned. */
        int (*list)(struct store_db *db, store_row_cb cb, void *userdata);
        int (*count)(struct store_db *db, uint64_t *ret);
        /* (profile, n, m, p, count, smallest device number) of the active devices, grouped
         * and ordered by shape. */
        int (*shapes)(struct store_db *db, store_shape_row_cb cb, void *userdata);

        /* One transaction: reads the aggregate name (locking it against other writers),
         * calls fold and, if it succeeds, writes *a back. Inside a batch the batch's commit
         * becomes durable. fold's error is returned, nothing written. */
        int (*aggregate_update)(struct store_db *db, const char *name, store_fold_fn fold, void *userdata,
                                struct aggregate *a);
        int (*aggregate_list)(struct store_db *db, store_aggregate_row_cb cb, void *userdata);

        /* -EBUSY if a batch is open. */
        int (*batch_begin)(struct store_db *db);
        /* Commits (synced if durable or a write asked for it); rolls back and fails with -EIO
         * after a write failed half done, or with -ECANCELED if the database refused a
         * statement and rolled the batch back whole (nothing committed, the database sound:
         * the next batch may succeed), or with -ENOTCONN if the connection to a database
         * server was lost before the commit answered (committed or not is unknown, the
         * server keeps its own durability: a later batch may reconnect and succeed).
         * -EINVAL without a batch. The batch ends either way. */
        int (*batch_commit)(struct store_db *db, bool durable);
        int (*batch_rollback)(struct store_db *db);

        /* A counter that changes whenever another connection committed a change. */
        int (*data_version)(struct store_db *db, uint64_t *ret);

        /*
         * The bulk copy of a whole store (store-copy.c, authserver migrate).
         * dump(): every row of data in one read-only snapshot (other connections may go on
         * writing; the dump sees none of it): the devices in id order, each with its
         * generations' sealed blobs (vaults[0] the committed one, vaults[1] the pending one,
         * present false when missing), then the audit rows and the audit summaries oldest
         * first, then the aggregates in name order. A callback's negative return stops the
         * walk and is returned.
         */
        int (*dump)(struct store_db *db, const struct store_dump_ops *cb, void *userdata);
        /* Opens a batch for a bulk load, the store locked against other writers until it
         * ends; -ENOTEMPTY (no batch open) if the store holds any device, audit, summary or
         * aggregate row. */
        int (*load_begin)(struct store_db *db);
        /* Inside that batch: inserts the device row with every column as given (its number
         * chosen anew) and the present blobs of vaults[] as its generations, unchanged. */
        int (*load_device)(struct store_db *db, const struct store_device *dev,
                           const struct store_raw_vault vaults[2]);
};

struct store_backend {
        const char *name;
        /* Whether the --db value is this back end's. */
        bool (*claims)(const char *path);
        const struct store_ops *ops;
};

extern const struct store_backend store_backend_sqlite;       /* store-sqlite.c */
#ifdef HAVE_LIBPQ
extern const struct store_backend store_backend_pg;           /* store-pg.c, claims store_path_is_postgresql() */
#endif

/* Whether path is a PostgreSQL connection string: a postgresql:// or postgres:// URI, or a
 * libpq keyword=value string (it starts with a keyword and '='); anything else is a file. */
bool store_path_is_postgresql(const char *path);

/* Sets the message store_last_error(s) returns ("%m" is strerror(-r)), and returns r. */
__attribute__((format(printf, 3, 4)))
int store_fail(struct store *s, int r, const char *fmt, ...);

/* Whether id is a valid device id (store.h). */
bool store_id_valid(const char *id);
