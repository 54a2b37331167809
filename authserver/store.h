/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The authserver's device store: one SQLite database (WAL) with a row per device, its
 * committed vault and at most one pending vault (PROTOCOL.md §6) as rows of their own, and an
 * audit table of handshakes. Vault blobs are sealed at rest with AES-256-GCM under a 32-byte
 * master key.
 *
 * Every function returns >= 0 on success and -errno on failure, writes its outputs only on
 * success, and never logs: store_last_error() gives the message of the last failure. A
 * struct store is one SQLite connection and must be used by one thread at a time.
 *
 * Updates are compare-and-set on the committed epoch and the enrollment: each names the
 * enrollment token store_get() returned and the epoch it expects, and fails with -ESTALE,
 * changing nothing, if the row has moved or the device was revoked and enrolled again. Errors shared by several calls:
 * -EINVAL bad id or parameters, -ENOENT unknown device, -EKEYREVOKED revoked device,
 * -EBADMSG corrupt database or a vault that fails authentication, -EBUSY database locked.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"
#include "cleanup.h"
#include "proto.h"

#define STORE_SCHEMA_VERSION    7       /* PRAGMA user_version of the databases we write;
                                         * versions 1 to 6 are upgraded when opened */
#define STORE_MASTER_KEY_LEN    32      /* AES-256 */

/* Parameter ranges of PROTOCOL.md §2 (common/proto.h), checked on every write. */
#define STORE_ID_MAX            SV_ID_MAX
#define STORE_VAULT_MAX         SV_VAULT_MAX

/* A vault of len bytes sealed at rest: iv, ciphertext, tag (store-crypto.h). */
#define STORE_SEALED_LEN(len)   ((len) + 28)

#define STORE_CREATE            1       /* store_open(): create the file and schema if missing */
/* store_open() without a master key (NULL): rows, aggregates and the audit trail can be read
 * and written, no vault sealed or opened (-ENOKEY). Not with STORE_CREATE. */
#define STORE_NO_KEY            2
#define STORE_HANDSHAKE         4       /* store_open(): for serve: a handshake's short time-outs */

struct store;

enum store_status {
        STORE_ACTIVE = 0,
        STORE_REVOKED = 1,
};

struct store_device {
        char id[STORE_ID_MAX + 1];
        enum store_status status;
        uint8_t profile;                /* 1 hardened, 2 paper */
        uint16_t n;                     /* keys */
        uint8_t m;                      /* bytes per key: 16 or 32 */
        uint8_t p;                      /* indices per challenge */
        uint64_t epoch;                 /* committed generation */
        bool has_pending;               /* a pending vault exists, of generation epoch + 1 */
        int64_t created;                /* unix seconds; 0 below means never */
        int64_t last_success;
        int64_t last_failure;
        uint32_t failures;              /* since the last success, saturating */
        uint64_t enrollment;            /* random, drawn at each enrollment */
        uint8_t kex;                    /* SV_KEX_*: the key share mode enrolled (schema 4) */
};

/* Whether a --db value is a PostgreSQL connection string (a postgresql:// or postgres:// URI, or
 * libpq's keyword=value form) rather than a SQLite file. Such a value may hold a password:
 * messages name "the PostgreSQL database" instead of echoing it. */
bool store_path_is_postgresql(const char *path);

/* -ENOENT missing file without STORE_CREATE, -EBADMSG not a store or corrupt,
 * -EPROTONOSUPPORT schema newer than STORE_SCHEMA_VERSION, -EKEYREJECTED wrong master key. */
int store_open(const char *path, const uint8_t master_key[STORE_MASTER_KEY_LEN], int flags,
               struct store **ret);
void store_close(struct store *s);
/* _cleanup_(store_closep) struct store *s = NULL; */
DEFINE_POINTER_CLEANUP(struct store *, store_close)

/* Message of the last failed call on s; with s == NULL, of the last failed store_open() or
 * store_master_key_*() of this thread. Never contains key material. */
const char *store_last_error(const struct store *s);

/* The master key file holds exactly 32 raw bytes or 64 hex digits and an optional newline,
 * and must not be accessible by group or others (-EPERM). */
int store_master_key_load(const char *path, uint8_t ret_key[STORE_MASTER_KEY_LEN]);
/* Creates a new random key file, mode 0600; -EEXIST if the path exists. */
int store_master_key_create(const char *path);

/* Enrolls dev->id (active, epoch dev->epoch, no pending) with a vault of n*m bytes.
 * -EEXIST if the id is enrolled and active; a revoked id is enrolled again. */
int store_enroll(struct store *s, const struct store_device *dev, const uint8_t *vault,
                 size_t len, int64_t now);

/* Loads the row, and the vaults into the buffers that are not NULL (cap bytes each, at least
 * n*m: -ENOBUFS). pending is left untouched without a pending vault; both are zeroed for a
 * revoked device, whose vaults are erased. */
int store_get(struct store *s, const char *id, struct store_device *ret, uint8_t *committed,
              uint8_t *pending, size_t cap);

/*
 * M3's writes, with the next vault sealed beforehand, so that the plaintext can be wiped at
 * once and the writer (the group commit) does only I/O. store_seal_next() seals next (len
 * bytes, a vault length) as the generation after epoch of id into sealed
 * (STORE_SEALED_LEN(len) bytes); epoch is the one M1 named, so that the blob fits both writes
 * below: store_set_pending_sealed() with expect_epoch = epoch, store_promote_and_set_pending_sealed()
 * with expect_epoch = epoch - 1. -EOVERFLOW if epoch is 2^64-1. A blob sealed for another id or
 * generation is stored all the same and fails authentication when read (-EBADMSG).
 */
int store_seal_next(struct store *s, const char *id, uint64_t epoch, const uint8_t *next, size_t len,
                    uint8_t *sealed);

/* M3 verified with the committed vault of generation expect_epoch: stores sealed as the
 * pending vault (expect_epoch + 1), replacing an older one, durably unless inside a batch
 * (then the batch commit is durable). -EOVERFLOW if expect_epoch is 2^64-1. After -EIO the
 * write may or may not survive a crash: M4 must not be sent. */
int store_set_pending_sealed(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                             const uint8_t *sealed, size_t sealed_len);

/* M3 verified with the pending vault: in one step the pending vault becomes committed
 * (epoch := expect_epoch + 1) and sealed becomes the pending vault (expect_epoch + 2), durably.
 * -ESTALE also without a pending vault. */
int store_promote_and_set_pending_sealed(struct store *s, const char *id, uint64_t enrollment,
                                         uint64_t expect_epoch, const uint8_t *sealed, size_t sealed_len);

/* M5 verified: the pending vault becomes committed (epoch := expect_epoch + 1), failures are
 * reset and last_success set. -ESTALE if the epoch moved or no vault is pending. Not synced:
 * a commit lost in a crash is recovered by PROTOCOL.md §6 (the device comes back with e+1). */
int store_commit(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                 int64_t now);
/* store_commit() and, if it committed, its audit row (now, id, peer, "ok", the new epoch):
 * on PostgreSQL in the same statement. *ret_audited false after a commit whose audit row
 * failed (store_last_error() says why; the commit stands). */
int store_commit_audited(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                         int64_t now, const char *peer, bool *ret_audited);

/*
 * Many servers on one database (docs/architecture.md): from now on this handle's writes of
 * M3 (store_set_pending_sealed(), store_promote_and_set_pending_sealed()) take the device's
 * session claim for owner (a random id of this process, never 0) for ttl_ms, on the
 * database's clock, and fail with -ESTALE while another owner's live claim holds it (the
 * promotion may take over a claim of the epoch it promotes from); store_commit() commits
 * only under owner's claim (-ESTALE otherwise) and releases it. owner 0: no claims (the
 * default).
 */
void store_set_claim(struct store *s, uint64_t owner, uint64_t ttl_ms);

/*
 * The back-off shared by every server of one database (PostgreSQL; docs/architecture.md,
 * "Many servers on one database"): what authserver's in-memory table (backoff.c) counts per
 * process, also counted in the database, so that a guesser who spreads attempts over N
 * servers is slowed as on one. Keys are store_backoff_hash() values of the same key strings:
 * a hash keyed by the master key, which every server of the fleet has, so a row says nothing
 * of the id's enrolment to a reader of the database. A delay starts at BACKOFF_BASE_MS and
 * doubles with each failure up to BACKOFF_MAX_MS; the id alone may delay an attempt by at
 * most BACKOFF_ID_MAX_MS and never turns one away (anyone who knows the id can run it up,
 * protocol §7). A key BACKOFF_FORGET_MS past its last wait is forgotten (upkeep).
 */
#define BACKOFF_BASE_MS         25
#define BACKOFF_MAX_MS          30000
#define BACKOFF_ID_MAX_MS       1000
#define BACKOFF_FORGET_MS       (15 * 60 * 1000)
enum { STORE_BACKOFF_NET, STORE_BACKOFF_ID_NET, STORE_BACKOFF_ID, _STORE_BACKOFF_KEYS };
struct store_backoff {
        int64_t key[_STORE_BACKOFF_KEYS];       /* in: store_backoff_hash() of each key */
        int64_t wait_ms;                /* out: the longest wait left under NET and ID_NET (0: none) */
        int64_t id_wait_ms;             /* out: the wait left under ID (0: none) */
        bool present;                   /* out: a row exists for one of the keys */
};
/* Whether several servers may write this store at once, each batch holding the row locks it
 * took until it ends (PostgreSQL; a SQLite batch locks the whole file). */
bool store_locks_rows(const struct store *s);
/* Whether this store keeps the shared back-off (a PostgreSQL store). */
bool store_has_shared_backoff(const struct store *s);
int store_backoff_hash(struct store *s, const char *key, int64_t *ret);
/* A failure under each of keys[0..n-1] (a write of the batch), in that order. */
int store_backoff_failure(struct store *s, const int64_t *keys, size_t n);
/* A success: the rows of keys[0..n-1] are gone. */
int store_backoff_reset(struct store *s, const int64_t *keys, size_t n);
/* Up to limit keys idle for BACKOFF_FORGET_MS are removed; how many. */
int store_backoff_prune(struct store *s, unsigned limit);
/* serve --server-id: owner (derived from the id, never 0) becomes this handle's for as long
 * as it is open: -EADDRINUSE if another live server holds it (waited for a few seconds: a
 * predecessor that just died), -EOPNOTSUPP on SQLite. The claims owner's previous process
 * left are released; *ret_released says how many. Then store_set_claim(s, owner, ...). */
int store_take_identity(struct store *s, uint64_t owner, uint64_t *ret_released);
/* The database's serving lock, held for as long as the handle is open: shared by every serve
 * (on its main handle), exclusive on migrate's source, so that a migration never copies a
 * store that a server still writes, nor a server starts on one being copied. SQLite: an
 * flock() of the file; PostgreSQL: an advisory lock of the session, taken again on every
 * reconnection. -EBUSY while it is held the other way (on PostgreSQL after waiting up to 1 s,
 * since a session ends a moment after its client has closed it). */
int store_lock_serving(struct store *s, bool exclusive);
/* The session of id whose M1 named epoch ended without a commit: its claim (this handle's
 * owner's, of that epoch; any other is left be) is released, so that the device may go on
 * at once on another server. Not durable: a release lost in a crash expires. 0 also if the
 * claim was not there; no-op without an owner. */
int store_release_claim(struct store *s, const char *id, uint64_t epoch);

/* Marks the device revoked and erases its vaults, durably. Returns 1 if it was active, 0 if
 * it was already revoked. */
int store_revoke(struct store *s, const char *id);

int store_record_failure(struct store *s, const char *id, int64_t now);
/* count failures at once, the last at time last (aggregated by the server, see conn.c). */
int store_add_failures(struct store *s, const char *id, uint32_t count, int64_t last);

/* Appends an audit row. id may be NULL (no valid id was sent); peer and outcome are short
 * printable ASCII. Never pass secrets. */
int store_audit(struct store *s, int64_t now, const char *id, const char *peer,
                const char *outcome, uint64_t epoch);

/* Calls cb for every device ordered by id, without decrypting any vault. A negative return
 * from cb stops the walk and is returned. cb must not call store_list() itself. */
typedef int (*store_list_cb)(const struct store_device *dev, void *userdata);
int store_list(struct store *s, store_list_cb cb, void *userdata);

/*
 * The aggregates of the built-in data handler (aggregate.h). store_aggregate_add() reads the
 * aggregate of name, folds value into it and writes it back; inside a batch it makes the
 * batch's commit durable (an fsync), so that an answer sent after the commit is never lost.
 * -EINVAL invalid name, -ERANGE the sum would leave the finite doubles (nothing written),
 * -EBADMSG a corrupt row. The walk is in name order; cb's negative return stops it.
 */
int store_aggregate_add(struct store *s, const char *name, double value, struct aggregate *ret);
typedef int (*store_aggregate_cb)(const struct aggregate *a, void *userdata);
int store_aggregate_list(struct store *s, store_aggregate_cb cb, void *userdata);
int store_count(struct store *s, uint64_t *ret_devices);

/*
 * The handshake's lookup (protocol §5): the row of id and, if M1's epoch names a generation
 * the device holds (the committed one at its epoch, the pending one at epoch + 1), that
 * generation's sealed blob copied into blob (cap bytes), not decrypted: *ret_len is 0 when
 * there is none. store_open_vault() then opens it, so that the caller decrypts exactly one
 * vault per M1, the real one or a decoy's (store_decoy_open()). The lookup costs the same
 * for every id: without a generation it reads the committed blob all the same, and for an
 * id that is not enrolled (-ENOENT) that of the row stand_in (a device number from
 * store_shapes(), 0 for none).
 */
int store_get_sealed(struct store *s, const char *id, uint64_t epoch, int64_t stand_in,
                     struct store_device *ret, uint8_t *blob, size_t cap, size_t *ret_len);
/* store_get_sealed() that also reads the shared back-off of b's keys in the same statement
 * (b may be NULL; without a shared back-off b's outputs are 0). */
int store_lookup_sealed(struct store *s, const char *id, uint64_t epoch, int64_t stand_in,
                        struct store_backoff *b, struct store_device *ret, uint8_t *blob, size_t cap,
                        size_t *ret_len);
int store_open_vault(struct store *s, const char *id, uint64_t epoch, const uint8_t *blob,
                     size_t blob_len, uint8_t *out, size_t len);

/* Decoy vaults: len random bytes sealed under the master key into blob (len +
 * STORE_BLOB_OVERHEAD bytes), opened at the same cost as a device's vault. */
int store_decoy_seal(struct store *s, size_t len, uint8_t *blob);
int store_decoy_open(struct store *s, const uint8_t *blob, size_t len, uint8_t *out);
/* A keyed hash of id under a key derived from the master key: stable across restarts,
 * unpredictable to whoever does not hold the key. */
int store_decoy_hash(struct store *s, const char *id, uint64_t *ret);

/* Calls cb for each shape of the active devices with their count and the number (rowid) of
 * one of them (a stand-in for store_get_sealed()), ordered by shape. */
typedef int (*store_shape_cb)(uint8_t profile, uint16_t n, uint8_t m, uint8_t p, uint64_t count,
                              int64_t stand_in, void *userdata);
int store_shapes(struct store *s, store_shape_cb cb, void *userdata);
/* Changes whenever another connection (an admin command) committed a change. */
int store_data_version(struct store *s, uint64_t *ret);

/* One row of failed handshakes aggregated by outcome (audit_summary). */
int store_audit_summary(struct store *s, int64_t now, const char *outcome, uint64_t count);
/* Deletes at most limit rows of the audit tables older than before; returns how many. */
int store_audit_prune(struct store *s, int64_t before, unsigned limit);
/* The audit rows of id (NULL: every device) from since on (unix seconds), oldest first; cb's
 * negative return stops the walk. device is "" for a row without a valid id. */
typedef int (*store_audit_cb)(int64_t time, const char *device, const char *peer, const char *outcome,
                              uint64_t epoch, void *userdata);
int store_audit_list(struct store *s, const char *id, int64_t since, store_audit_cb cb, void *userdata);

/* Groups the writes of many handshakes into one transaction and at most one fsync. The commit
 * is synced if durable is true or if the batch stored a pending vault. After a failed commit
 * the batch is rolled back; so is a batch one of whose writes failed half done (-EIO from
 * the commit, or -ECANCELED when the database refused a statement and rolled the whole batch
 * back, as PostgreSQL does after a lock time-out or a deadlock: nothing was committed and the
 * next batch may succeed). -ENOTCONN from the commit: the connection to the database server
 * (PostgreSQL) was lost before the commit answered, e.g. the primary died, or the commit got
 * no answer within the store's bound and the connection was dropped: whether the batch
 * was committed is unknown, and a later batch may reconnect (to a promoted standby) and
 * succeed. -EBUSY from begin if a batch is already open. */
int store_batch_begin(struct store *s);
int store_batch_commit(struct store *s, bool durable);
int store_batch_rollback(struct store *s);

/*
 * The bulk copy of a whole store into an empty one (store-copy.c; authserver migrate): the
 * sealed blobs go over as they are, never decrypted, so both stores must be sealed under the
 * same master key (-EKEYREJECTED otherwise).
 *
 * store_dump() walks every row of s in one read snapshot: devices (id order) with their
 * generations, audit rows and summaries (oldest first), aggregates (name order); each row is
 * checked as it is read (-EBADMSG). A callback's negative return stops it and is returned.
 * store_load_begin() opens the one transaction of a load, the store locked against other
 * writers: -ENOTEMPTY if it holds any row of data. store_load_device() adds a device with its
 * generations; audit rows and summaries go in with store_audit() and store_audit_summary(),
 * aggregates with store_load_aggregate(); store_batch_commit() (durable) or
 * store_batch_rollback() ends it: all of it or nothing.
 */
struct store_raw_vault {
        bool present;
        uint64_t epoch;                 /* the generation */
        const uint8_t *blob;            /* sealed: iv || ciphertext || tag */
        size_t len;
};
struct store_dump_cb {
        /* vaults[0] the committed generation, vaults[1] the pending one (present false if none). */
        int (*device)(const struct store_device *dev, const struct store_raw_vault vaults[2], void *userdata);
        int (*audit)(int64_t time, const char *device, const char *peer, const char *outcome, uint64_t epoch,
                     void *userdata);
        int (*summary)(int64_t time, const char *outcome, uint64_t count, void *userdata);
        int (*aggregate)(const struct aggregate *a, void *userdata);
};
int store_dump(struct store *s, const struct store_dump_cb *cb, void *userdata);
/* -EKEYREJECTED if a and b are not sealed under the same master key. */
int store_same_master_key(struct store *a, struct store *b);
int store_load_begin(struct store *s);
int store_load_device(struct store *s, const struct store_device *dev, const struct store_raw_vault vaults[2]);
int store_load_aggregate(struct store *s, const struct aggregate *a);

/* Copies every row of from into to (empty, same master key) in one transaction of to: all or
 * nothing. -ENOTEMPTY to holds data, -EKEYREJECTED other master key, -EBADMSG a corrupt row
 * in from; the message of any failure, reading from included, is store_last_error(to). */
struct store_copy_counts {
        uint64_t devices, vaults, audit, summaries, aggregates;
};
int store_copy(struct store *from, struct store *to, struct store_copy_counts *ret);
