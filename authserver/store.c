/* SPDX-License-Identifier: MIT */

/*
 * The device store's front, the same for every back end (store-backend.h): it checks every
 * id, parameter and length, seals vaults before a back end sees them and opens them after,
 * verifies the master key, seals decoys, words the errors, and calls the back end chosen by
 * the --db value for the storage itself. See store.h for the contract.
 *
 * Hygiene. Plaintext vaults never reach a back end: they are sealed (store-crypto.c) into a
 * scratch buffer, or by the caller (store_seal_next()), and opened from the back end's sealed
 * copy into the caller's buffer.
 */

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "crypto.h"
#include "profile.h"
#include "aggregate.h"
#include "store.h"
#include "store-backend.h"
#include "store-crypto.h"
#include "text.h"
#include "vault.h"

#define STORE_ERROR_MAX         256
#define STORE_PEER_MAX          128     /* "[v6 address%scope]:port" fits */
#define STORE_OUTCOME_MAX       32

#define KEYCHECK_ID     "keycheck"
#define KEYCHECK_EPOCH  UINT64_MAX
#define KEYCHECK_LEN    16

/* The AEAD identity of decoy vaults: not a valid device id, so never a device's key or AD. */
#define DECOY_ID        "#decoy"
#define DECOY_HASH_LABEL "sv1 decoy shape"
#define BACKOFF_HASH_LABEL "sv1 backoff key"

/* The back ends, tried in order: the first that claims the --db value opens it. SQLite's
 * claims every value that is not a PostgreSQL connection string; without a back end that
 * claims one, store_open() refuses it (-EPROTONOSUPPORT). */
static const struct store_backend *const backends[] = {
#ifdef HAVE_LIBPQ
        &store_backend_pg,
#endif
        &store_backend_sqlite,
};

struct store {
        const struct store_ops *ops;
        struct store_db *db;
        struct store_aead *aead;
        uint8_t *seal;                  /* 2 * STORE_BLOB_MAX bytes: two sealed vaults */
        struct store_claim claim;       /* owner 0: the writes take no session claim */
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

int store_fail(struct store *s, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vformat(s->error, sizeof(s->error), r, fmt, ap);
        va_end(ap);
        return r;
}

const char *store_last_error(const struct store *s) {
        return s ? s->error : thread_error;
}

bool store_path_is_postgresql(const char *path) {
        size_t k;

        if (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0)
                return true;
        /* libpq's "keyword = value ...": a keyword of letters and '_', then '='. */
        path += strspn(path, " \t");
        k = strspn(path, "abcdefghijklmnopqrstuvwxyz_");
        return k > 0 && path[k + strspn(path + k, " \t")] == '=';
}

bool store_id_valid(const char *id) {
        return id && vault_device_id_valid(id, strnlen(id, STORE_ID_MAX + 1));
}

static int check_id(struct store *s, const char *id) {
        /* The id is not echoed: it failed validation and may hold anything. */
        return store_id_valid(id) ? 0 : store_fail(s, -EINVAL, "Invalid device id: 1..%d characters of "
                                             "[A-Za-z0-9._:-] expected", STORE_ID_MAX);
}

/* The protocol's own rules (the profile table), applied to a row's values before any
 * narrowing cast. Devices carry no key share mode yet (protocol revision 1.1 §10). */
static bool params_valid(int64_t profile, int64_t n, int64_t m, int64_t p) {
        if (profile < 0 || n < 0 || m < 0 || p < 0)
                return false;
        return profile_check((uint64_t) profile, SV_KEX_NONE, (uint64_t) n, (uint64_t) m, (uint64_t) p) >= 0;
}

static int check_vault_len(struct store *s, const uint8_t *vault, size_t len) {
        if (!vault || len < SV_N_MIN * SV_M_MIN || len > STORE_VAULT_MAX || len % SV_M_MIN)
                return store_fail(s, -EINVAL, "Invalid vault length %zu", len);
        return 0;
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

/* A connection string may hold a password: not echoed. */
static int keycheck_verify(struct store *s, const char *path) {
        uint8_t blob[KEYCHECK_LEN + STORE_BLOB_OVERHEAD], out[KEYCHECK_LEN];
        bool pg = store_path_is_postgresql(path);
        size_t len = 0;
        int r;

        r = s->ops->keycheck_get(s->db, blob, sizeof blob, &len);
        if (r == -EBADMSG)
                return pg ? store_fail(s, r, "The PostgreSQL database has no key check: not a secure-vault store")
                          : store_fail(s, r, "Database '%s' has no key check: not a secure-vault store", path);
        if (r < 0)
                return r;
        r = store_aead_open(s->aead, KEYCHECK_ID, KEYCHECK_EPOCH, blob, len, out, sizeof out);
        OPENSSL_cleanse(out, sizeof out);
        if (r < 0)
                return pg ? store_fail(s, -EKEYREJECTED, "The master key does not open the PostgreSQL database: "
                                       "wrong key file?")
                          : store_fail(s, -EKEYREJECTED, "The master key does not open database '%s': wrong key "
                                       "file?", path);
        return 0;
}

static const struct store_backend *backend_of(const char *path) {
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
                if (backends[i]->claims(path))
                        return backends[i];
        return NULL;
}

int store_open(const char *path, const uint8_t master_key[STORE_MASTER_KEY_LEN], int flags,
               struct store **ret) {
        static const uint8_t zeros[KEYCHECK_LEN];
        _cleanup_(store_closep) struct store *s = NULL;
        const struct store_backend *b;
        int r;

        if (!path || !ret || (flags & ~(STORE_CREATE | STORE_NO_KEY | STORE_HANDSHAKE)) ||
            !master_key != !!(flags & STORE_NO_KEY) || (flags & STORE_CREATE && flags & STORE_NO_KEY))
                return thread_errorf(-EINVAL, "Invalid arguments to store_open()");
        b = backend_of(path);
        /* The connection string may hold a password: not echoed. */
        if (!b)
                return thread_errorf(-EPROTONOSUPPORT, "The database is a PostgreSQL connection string, "
                                     "and this authserver was built without PostgreSQL support");

        s = calloc(1, sizeof(*s));
        if (!s)
                return thread_errorf(-ENOMEM, "Out of memory");
        s->ops = b->ops;
        s->seal = malloc(2 * STORE_BLOB_MAX);
        if (!s->seal)
                return thread_errorf(-ENOMEM, "Out of memory");
        if (flags & STORE_NO_KEY) {
                /* No key, no key check: the schema is not created here, only read (or upgraded). */
                r = s->ops->open(s, path, flags & ~STORE_NO_KEY, NULL, 0, &s->db);
                if (r < 0)
                        return thread_errorf(r, "%s", s->error);
                *ret = TAKE_PTR(s);
                return 0;
        }
        r = store_aead_new(master_key, &s->aead);
        if (r < 0)
                return thread_errorf(r, "Failed to set up AES-256-GCM: OpenSSL has no usable implementation");
        /* Sealed before the back end opens: a new store gets it with its schema. */
        r = store_aead_seal(s->aead, KEYCHECK_ID, KEYCHECK_EPOCH, zeros, sizeof zeros, s->seal);
        if (r < 0)
                return thread_errorf(r, "Failed to seal the key check");
        r = s->ops->open(s, path, flags, s->seal, KEYCHECK_LEN + STORE_BLOB_OVERHEAD, &s->db);
        if (r >= 0)
                r = keycheck_verify(s, path);
        if (r < 0)
                return thread_errorf(r, "%s", s->error);
        *ret = TAKE_PTR(s);
        return 0;
}

void store_close(struct store *s) {
        if (!s)
                return;
        if (s->db)
                s->ops->close(s->db);
        store_aead_free(s->aead);
        if (s->seal)
                OPENSSL_cleanse(s->seal, 2 * STORE_BLOB_MAX);
        free(s->seal);
        OPENSSL_cleanse(s, sizeof(*s));
        free(s);
}

/* A row read by a back end, checked: range checks on the int64 values before any narrowing
 * cast, the profile table, the generations. */
static int device_from_row(struct store *s, const struct store_row *row, struct store_device *d) {
        const char *id = row->id;

        memset(d, 0, sizeof(*d));
        if (!store_id_valid(id) || !params_valid(row->profile, row->n, row->m, row->p) ||
            row->failures < 0 || row->failures > UINT32_MAX)
                return store_fail(s, -EBADMSG, "The database has a corrupt device row");
        if (strcmp(row->status, "active") == 0)
                d->status = STORE_ACTIVE;
        else if (strcmp(row->status, "revoked") == 0)
                d->status = STORE_REVOKED;
        else
                return store_fail(s, -EBADMSG, "Device '%s' has an invalid status", id);

        strcpy(d->id, id);
        d->profile = (uint8_t) row->profile;
        d->n = (uint16_t) row->n;
        d->m = (uint8_t) row->m;
        d->p = (uint8_t) row->p;
        d->epoch = (uint64_t) row->epoch;
        d->has_pending = row->has_pending;
        d->created = row->created;
        d->last_success = row->last_success;
        d->last_failure = row->last_failure;
        d->failures = (uint32_t) row->failures;
        d->enrollment = (uint64_t) row->enrollment;
        /* The kex column: a mode the profile table allows with the row's profile (implemented or not). */
        if (row->kex < 0 || !profile_entry(d->profile, (uint64_t) row->kex))
                return store_fail(s, -EBADMSG, "Device '%s' has an invalid key exchange mode", id);
        d->kex = (uint8_t) row->kex;
        if (d->has_pending && d->epoch == UINT64_MAX)
                return store_fail(s, -EBADMSG, "Device '%s' has a pending vault beyond the last epoch", id);
        if (d->has_pending && (uint64_t) row->pending_epoch != d->epoch + 1)
                return store_fail(s, -EBADMSG, "Device '%s' has a vault of an unexpected generation", id);
        return 0;
}

static int not_enrolled(struct store *s, const char *id) {
        return store_fail(s, -ENOENT, "Device '%s' is not enrolled", id);
}

/* After a compare-and-set matched no row: say why. */
static int explain_miss(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                        bool need_pending, size_t len, bool commit) {
        struct store_probe p;
        int r;

        r = s->ops->probe(s->db, id, &p);
        if (r == -ENOENT)
                return not_enrolled(s, id);
        if (r < 0)
                return r;
        if (!p.active)
                return store_fail(s, -EKEYREVOKED, "Device '%s' is revoked", id);
        if ((uint64_t) p.enrollment != enrollment)
                return store_fail(s, -ESTALE, "Device '%s' was enrolled again", id);
        if ((uint64_t) p.epoch != expect_epoch)
                return store_fail(s, -ESTALE, "Device '%s' is no longer at epoch %llu", id,
                            (unsigned long long) expect_epoch);
        if (need_pending && !p.has_pending)
                return store_fail(s, -ESTALE, "Device '%s' has no pending vault", id);
        if (len && (size_t) p.vault_len != len)
                return store_fail(s, -EINVAL, "Vault of %zu bytes does not match the n*m of device '%s'",
                            len, id);
        /* Another process's session holds the device (a commit: took it over). */
        if (s->claim.owner && commit && p.claim_owner != s->claim.owner)
                return store_fail(s, -ESTALE, "Device '%s' was taken over by another server's session", id);
        if (s->claim.owner && !commit && p.claim_owner != s->claim.owner && p.claim_live)
                return store_fail(s, -ESTALE, "Device '%s' has a session on another server", id);
        return store_fail(s, -EIO, "Failed to update device '%s'", id);
}

int store_enroll(struct store *s, const struct store_device *dev, const uint8_t *vault,
                 size_t len, int64_t now) {
        uint64_t enrollment;
        int r;

        r = check_id(s, dev->id);
        if (r < 0)
                return r;
        if (!params_valid(dev->profile, dev->n, dev->m, dev->p))
                return store_fail(s, -EINVAL, "Invalid parameters for device '%s': profile %u, n %u, m %u, p %u",
                            dev->id, dev->profile, dev->n, dev->m, dev->p);
        if (!profile_entry(dev->profile, dev->kex))
                return store_fail(s, -EINVAL, "Invalid key exchange mode %u for device '%s' (profile %u)",
                            dev->kex, dev->id, dev->profile);
        if (!vault || len != (size_t) dev->n * dev->m)
                return store_fail(s, -EINVAL, "Vault of device '%s' must be n*m = %zu bytes, not %zu",
                            dev->id, (size_t) dev->n * dev->m, len);

        r = crypto_random(&enrollment, sizeof enrollment);
        if (r < 0)
                return store_fail(s, r, "Failed to draw an enrollment token");
        r = store_aead_seal(s->aead, dev->id, dev->epoch, vault, len, s->seal);
        if (r < 0)
                return store_fail(s, r, "Failed to encrypt the vault of device '%s'", dev->id);
        r = s->ops->enroll(s->db, dev, enrollment, now, s->seal, len + STORE_BLOB_OVERHEAD);
        if (r == 0)
                r = store_fail(s, -EEXIST, "Device '%s' is already enrolled", dev->id);
        return r < 0 ? r : 0;
}

/* The message of a vault that did not open (store_aead_open()'s r). */
static int vault_open_failed(struct store *s, int r, const char *id) {
        if (r == -EBADMSG)
                return store_fail(s, r, "Vault of device '%s' fails authentication: wrong master key or "
                            "tampered database", id);
        return store_fail(s, r, "Failed to decrypt the vault of device '%s'", id);
}

int store_get(struct store *s, const char *id, struct store_device *ret, uint8_t *committed,
              uint8_t *pending, size_t cap) {
        struct store_blob v[2] = {
                { .data = s->seal, .cap = STORE_BLOB_MAX },
                { .data = s->seal + STORE_BLOB_MAX, .cap = STORE_BLOB_MAX },
        };
        bool want = committed || pending, have_committed = false, wrote = false;
        struct store_row row;
        struct store_device d;
        size_t len;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        r = s->ops->get(s->db, id, &row, want ? v : NULL);
        if (r == -ENOENT)
                return not_enrolled(s, id);
        if (r >= 0)
                r = device_from_row(s, &row, &d);
        if (r < 0)
                goto wipe;

        len = (size_t) d.n * d.m;
        if (want && cap < len) {
                r = store_fail(s, -ENOBUFS, "Vault of device '%s' needs %zu bytes", id, len);
                goto wipe;
        }
        if (d.status == STORE_REVOKED || !want) {
                if (committed)
                        memset(committed, 0, len);
                if (pending)
                        memset(pending, 0, len);
                *ret = d;
                goto wipe;
        }
        for (size_t i = 0; i < 2 && r >= 0; i++) {
                uint64_t e = (uint64_t) v[i].epoch;
                uint8_t *out = NULL;

                if (!v[i].present)
                        continue;
                if (e == d.epoch) {
                        have_committed = true;
                        out = committed;
                } else if (d.has_pending && e == d.epoch + 1)
                        out = pending;
                else {
                        r = store_fail(s, -EBADMSG, "Device '%s' has a vault of an unexpected generation", id);
                        break;
                }
                if (!out)
                        continue;
                wrote = true;
                /* A blob longer than the buffer fails authentication as a truncated one would. */
                r = store_aead_open(s->aead, id, e, v[i].data, v[i].len <= v[i].cap ? v[i].len : 0, out, len);
                if (r < 0)
                        r = vault_open_failed(s, r, id);
        }
        if (r >= 0 && !have_committed)
                r = store_fail(s, -EBADMSG, "Device '%s' has no committed vault", id);
        if (r < 0) {
                if (wrote && committed)
                        OPENSSL_cleanse(committed, len);
                if (wrote && pending)
                        OPENSSL_cleanse(pending, len);
        } else
                *ret = d;
wipe:
        for (size_t i = 0; i < 2; i++)
                if (v[i].present && v[i].len <= v[i].cap)
                        OPENSSL_cleanse(v[i].data, v[i].len);
        return r < 0 ? r : 0;
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
                return store_fail(s, -EINVAL, "No buffer for the sealed vault");
        if (epoch == UINT64_MAX)
                return store_fail(s, -EOVERFLOW, "Device '%s' is at the last epoch and must be enrolled again", id);
        r = store_aead_seal(s->aead, id, epoch + 1, next, len, sealed);
        return r < 0 ? store_fail(s, r, "Failed to encrypt the vault of device '%s'", id) : 0;
}

/* The pending vault of M3: sealed for generation expect_epoch + 1 (promote: + 2). */
static int write_pending(struct store *s, bool promote, const char *id, uint64_t enrollment,
                         uint64_t expect_epoch, const uint8_t *sealed, size_t sealed_len) {
        size_t len = sealed_len - STORE_BLOB_OVERHEAD;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        if (!sealed || sealed_len < STORE_BLOB_OVERHEAD)
                return store_fail(s, -EINVAL, "Invalid sealed vault length %zu", sealed_len);
        r = check_vault_len(s, sealed, len);
        if (r < 0)
                return r;
        if (expect_epoch >= UINT64_MAX - (promote ? 1 : 0))
                return store_fail(s, -EOVERFLOW, "Device '%s' is at the last epoch and must be enrolled again",
                            id);

        r = (promote ? s->ops->promote : s->ops->set_pending)(s->db, id, enrollment, expect_epoch,
                                                              sealed, sealed_len, len,
                                                              s->claim.owner ? &s->claim : NULL);
        if (r == 0)
                r = explain_miss(s, id, enrollment, expect_epoch, promote, len, false);
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

/* The commit, with its audit row in the same write when peer is set (commit_audited()). */
static int commit(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch, int64_t now,
                  const char *peer) {
        const struct store_claim *claim = s->claim.owner ? &s->claim : NULL;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        if (expect_epoch == UINT64_MAX)
                return store_fail(s, -EOVERFLOW, "Device '%s' is at the last epoch", id);
        r = peer ? s->ops->commit_audited(s->db, id, enrollment, expect_epoch, now, claim, peer)
                 : s->ops->commit(s->db, id, enrollment, expect_epoch, now, claim);
        if (r == 0)
                r = explain_miss(s, id, enrollment, expect_epoch, true, 0, true);
        return r < 0 ? r : 0;
}

int store_commit(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                 int64_t now) {
        return commit(s, id, enrollment, expect_epoch, now, NULL);
}

int store_commit_audited(struct store *s, const char *id, uint64_t enrollment, uint64_t expect_epoch,
                         int64_t now, const char *peer, bool *ret_audited) {
        int r;

        *ret_audited = false;
        if (!s->ops->commit_audited) {
                r = commit(s, id, enrollment, expect_epoch, now, NULL);
                if (r >= 0)
                        *ret_audited = store_audit(s, now, id, peer, "ok", expect_epoch + 1) >= 0;
                return r;
        }
        r = commit(s, id, enrollment, expect_epoch, now, peer);
        *ret_audited = r >= 0;
        return r;
}

int store_release_claim(struct store *s, const char *id, uint64_t epoch) {
        int r;

        r = check_id(s, id);
        if (r < 0 || !s->claim.owner)
                return r;
        r = s->ops->release(s->db, id, epoch, &s->claim);
        return r < 0 ? r : 0;
}

void store_set_claim(struct store *s, uint64_t owner, uint64_t ttl_ms) {
        s->claim.owner = (int64_t) owner;
        s->claim.ttl_ms = ttl_ms > INT32_MAX ? INT32_MAX : (int64_t) ttl_ms;
}

int store_take_identity(struct store *s, uint64_t owner, uint64_t *ret_released) {
        if (!s->ops->identity)
                return store_fail(s, -EOPNOTSUPP, "A server id applies to a PostgreSQL store only");
        if (owner == 0)
                return store_fail(s, -EINVAL, "Invalid server id");
        return s->ops->identity(s->db, (int64_t) owner, ret_released);
}

int store_lock_serving(struct store *s, bool exclusive) {
        return s->ops->serving_lock(s->db, exclusive);
}

int store_revoke(struct store *s, const char *id) {
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        r = s->ops->revoke(s->db, id);
        if (r != 0)
                return r < 0 ? r : 1;
        r = explain_miss(s, id, 0, 0, false, 0, false);
        return r == -EKEYREVOKED ? 0 : r;
}

int store_record_failure(struct store *s, const char *id, int64_t now) {
        return store_add_failures(s, id, 1, now);
}

int store_add_failures(struct store *s, const char *id, uint32_t count, int64_t last) {
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        r = s->ops->add_failures(s->db, id, count, last);
        if (r == 0)
                return not_enrolled(s, id);
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
        if (id && !store_id_valid(id))
                return check_id(s, id);
        if (!text_valid(peer, STORE_PEER_MAX) || !text_valid(outcome, STORE_OUTCOME_MAX))
                return store_fail(s, -EINVAL, "Invalid audit record: peer and outcome must be short "
                            "printable ASCII");
        return s->ops->audit(s->db, now, id, peer, outcome, epoch);
}

struct list_ctx {
        struct store *s;
        store_list_cb cb;
        void *userdata;
};

static int list_row(const struct store_row *row, void *userdata) {
        struct list_ctx *c = userdata;
        struct store_device d;
        int r;

        r = device_from_row(c->s, row, &d);
        return r < 0 ? r : c->cb(&d, c->userdata);
}

int store_list(struct store *s, store_list_cb cb, void *userdata) {
        struct list_ctx c = { s, cb, userdata };
        int r = s->ops->list(s->db, list_row, &c);

        return r < 0 ? r : 0;
}

int store_count(struct store *s, uint64_t *ret_devices) {
        return s->ops->count(s->db, ret_devices);
}

/* Checks an aggregate's row as read; -EBADMSG for a row no fold can have written. */
static int aggregate_check(struct store *s, const struct aggregate *a) {
        if (a->count == 0 || !isfinite(a->sum) || !isfinite(a->min) || !isfinite(a->max) || a->min > a->max)
                return store_fail(s, -EBADMSG, "Aggregate '%s' in the database is corrupt", a->name);
        return 0;
}

struct fold_ctx {
        struct store *s;
        double value;
};

static int fold_one(struct aggregate *a, bool found, void *userdata) {
        struct fold_ctx *c = userdata;
        int r;

        if (found) {
                r = aggregate_check(c->s, a);
                if (r < 0)
                        return r;
        } else
                a->count = 0;
        r = aggregate_fold(a, c->value);
        return r < 0 ? store_fail(c->s, r, "Aggregate '%s' would leave the finite numbers", a->name) : 0;
}

int store_aggregate_add(struct store *s, const char *name, double value, struct aggregate *ret) {
        struct fold_ctx c = { s, value };
        struct aggregate a = { 0 };
        int r;

        if (!aggregate_name_valid(name))
                return store_fail(s, -EINVAL, "Invalid aggregate name");
        strcpy(a.name, name);
        r = s->ops->aggregate_update(s->db, name, fold_one, &c, &a);
        if (r < 0)
                return r;
        *ret = a;
        return 0;
}

struct aggregate_ctx {
        struct store *s;
        store_aggregate_cb cb;
        void *userdata;
};

static int aggregate_row(const char *name, int64_t count, double sum, double min, double max, void *userdata) {
        struct aggregate_ctx *c = userdata;
        struct aggregate a = { .count = (uint64_t) count, .sum = sum, .min = min, .max = max };
        int r;

        if (!name || !aggregate_name_valid(name))
                return store_fail(c->s, -EBADMSG, "An aggregate name in the database is invalid");
        strcpy(a.name, name);
        r = aggregate_check(c->s, &a);
        return r < 0 ? r : c->cb(&a, c->userdata);
}

int store_aggregate_list(struct store *s, store_aggregate_cb cb, void *userdata) {
        struct aggregate_ctx c = { s, cb, userdata };
        int r = s->ops->aggregate_list(s->db, aggregate_row, &c);

        return r < 0 ? r : 0;
}

int store_batch_begin(struct store *s) {
        return s->ops->batch_begin(s->db);
}

int store_batch_commit(struct store *s, bool durable) {
        return s->ops->batch_commit(s->db, durable);
}

int store_batch_rollback(struct store *s) {
        return s->ops->batch_rollback(s->db);
}

struct lookup_ctx {
        struct store *s;
        uint64_t epoch;
        int r;                          /* the row's check */
        struct store_device d;
        bool use;                       /* the picked blob is the generation M1 named */
};

/* The same choice as generation_choose() makes from the row: see protocol §5. A committed
 * vault row of another generation is a damaged file: no vault (-EBADMSG for the caller).
 * device_from_row() checked the pending row's generation. Whatever is not used, the committed
 * blob is read all the same: the cost of a vault read whose result is not used. */
static enum store_pick lookup_pick(const struct store_row *row, bool found, void *userdata) {
        struct lookup_ctx *c = userdata;

        c->use = false;
        if (!found)
                return STORE_PICK_COMMITTED;
        c->r = device_from_row(c->s, row, &c->d);
        if (c->r < 0)
                return STORE_PICK_COMMITTED;
        if (c->d.status == STORE_ACTIVE && c->epoch == c->d.epoch && row->has_committed &&
            (uint64_t) row->committed_epoch == c->epoch) {
                c->use = true;
                return STORE_PICK_COMMITTED;
        }
        if (c->d.status == STORE_ACTIVE && c->d.has_pending && c->d.epoch != UINT64_MAX &&
            c->epoch == c->d.epoch + 1) {
                c->use = true;
                return STORE_PICK_PENDING;
        }
        return STORE_PICK_COMMITTED;
}

/*
 * The lookup reads one row and one vault blob of it whatever the id: the generation M1 names;
 * the committed one when M1 names none (the device's row was read all the same); and for an
 * id that is not enrolled, the committed vault of the stand-in row, in the same statement,
 * so that a miss in the id index costs what a device's row does.
 */
int store_get_sealed(struct store *s, const char *id, uint64_t epoch, int64_t stand_in,
                     struct store_device *ret, uint8_t *blob, size_t cap, size_t *ret_len) {
        return store_lookup_sealed(s, id, epoch, stand_in, NULL, ret, blob, cap, ret_len);
}

int store_lookup_sealed(struct store *s, const char *id, uint64_t epoch, int64_t stand_in,
                        struct store_backoff *b, struct store_device *ret, uint8_t *blob, size_t cap,
                        size_t *ret_len) {
        struct lookup_ctx c = { .s = s, .epoch = epoch };
        struct store_row row;
        size_t len = 0;
        bool found = false;
        int r;

        r = check_id(s, id);
        if (r < 0)
                return r;
        if (b) {
                b->wait_ms = b->id_wait_ms = 0;
                b->present = false;
        }
        r = s->ops->lookup(s->db, id, stand_in, s->ops->backoff_failure ? b : NULL, lookup_pick, &c, &row,
                           &found, blob, cap, &len);
        if (r == -ENOENT || (r >= 0 && !found)) {
                if (r >= 0 && len <= cap)
                        OPENSSL_cleanse(blob, len);
                return not_enrolled(s, id);
        }
        if (r < 0)
                return r;
        if (c.r < 0) {
                if (len <= cap)
                        OPENSSL_cleanse(blob, len);
                return c.r;
        }
        if (!c.use) {
                if (len <= cap)
                        OPENSSL_cleanse(blob, len);
                len = 0;
        } else if (len > cap)
                return store_fail(s, -EBADMSG, "Vault of device '%s' has an invalid size", id);
        *ret = c.d;
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
                return store_fail(s, -EINVAL, "Invalid decoy vault length %zu", len);
        plain = malloc(len);
        if (!plain)
                return store_fail(s, -ENOMEM, "Out of memory");
        r = crypto_random(plain, len);
        if (r >= 0)
                r = store_aead_seal(s->aead, DECOY_ID, 0, plain, len, blob);
        OPENSSL_cleanse(plain, len);
        free(plain);
        return r < 0 ? store_fail(s, r, "Failed to seal a decoy vault") : 0;
}

int store_decoy_open(struct store *s, const uint8_t *blob, size_t len, uint8_t *out) {
        int r = store_aead_open(s->aead, DECOY_ID, 0, blob, len + STORE_BLOB_OVERHEAD, out, len);

        return r < 0 ? store_fail(s, r, "Failed to open a decoy vault") : 0;
}

bool store_locks_rows(const struct store *s) {
        return s->ops->row_locks;
}

bool store_has_shared_backoff(const struct store *s) {
        return s->ops->backoff_failure != NULL;
}

/* The first 64 bits of the keyed hash of text under label (store_aead_keyed_hash()). */
static int keyed_hash64(struct store *s, const char *label, const char *text, const char *what, uint64_t *ret) {
        uint8_t h[32];
        uint64_t v = 0;
        int r;

        r = store_aead_keyed_hash(s->aead, label, text, h);
        if (r < 0)
                return store_fail(s, r, "Failed to hash %s", what);
        for (int i = 0; i < 8; i++)
                v = v << 8 | h[i];
        OPENSSL_cleanse(h, sizeof h);
        *ret = v;
        return 0;
}

int store_backoff_hash(struct store *s, const char *key, int64_t *ret) {
        uint64_t v = 0;
        int r = keyed_hash64(s, BACKOFF_HASH_LABEL, key, "a back-off key", &v);

        *ret = (int64_t) v;
        return r;
}

static int backoff_each(struct store *s, int (*op)(struct store_db *db, int64_t key), const int64_t *keys,
                        size_t n) {
        int r = 0;

        for (size_t i = 0; op && i < n && r >= 0; i++)
                r = op(s->db, keys[i]);
        return r < 0 ? r : 0;
}

int store_backoff_failure(struct store *s, const int64_t *keys, size_t n) {
        return backoff_each(s, s->ops->backoff_failure, keys, n);
}

int store_backoff_reset(struct store *s, const int64_t *keys, size_t n) {
        return backoff_each(s, s->ops->backoff_reset, keys, n);
}

int store_backoff_prune(struct store *s, unsigned limit) {
        if (!s->ops->backoff_prune)
                return 0;
        return s->ops->backoff_prune(s->db, BACKOFF_FORGET_MS, limit);
}

int store_decoy_hash(struct store *s, const char *id, uint64_t *ret) {
        return keyed_hash64(s, DECOY_HASH_LABEL, id, "a device id", ret);
}

struct shape_ctx {
        struct store *s;
        store_shape_cb cb;
        void *userdata;
};

static int shape_row(int64_t profile, int64_t n, int64_t m, int64_t p, int64_t count, int64_t stand_in,
                     void *userdata) {
        struct shape_ctx *c = userdata;

        if (!params_valid(profile, n, m, p) || count < 1)
                return store_fail(c->s, -EBADMSG, "The database has a corrupt device row");
        return c->cb((uint8_t) profile, (uint16_t) n, (uint8_t) m, (uint8_t) p, (uint64_t) count, stand_in,
                     c->userdata);
}

int store_shapes(struct store *s, store_shape_cb cb, void *userdata) {
        struct shape_ctx c = { s, cb, userdata };
        int r = s->ops->shapes(s->db, shape_row, &c);

        return r < 0 ? r : 0;
}

int store_data_version(struct store *s, uint64_t *ret) {
        return s->ops->data_version(s->db, ret);
}

int store_audit_summary(struct store *s, int64_t now, const char *outcome, uint64_t count) {
        if (!text_valid(outcome, STORE_OUTCOME_MAX) || count > INT64_MAX)
                return store_fail(s, -EINVAL, "Invalid audit summary");
        return s->ops->audit_summary(s->db, now, outcome, count);
}

int store_audit_prune(struct store *s, int64_t before, unsigned limit) {
        return s->ops->audit_prune(s->db, before, limit);
}

int store_same_master_key(struct store *a, struct store *b) {
        uint8_t blob[KEYCHECK_LEN + STORE_BLOB_OVERHEAD], out[KEYCHECK_LEN];
        size_t len = 0;
        int r;

        r = b->ops->keycheck_get(b->db, blob, sizeof blob, &len);
        if (r == -EBADMSG)
                return store_fail(b, r, "The database has no key check: not a secure-vault store");
        if (r < 0)
                return r;
        r = store_aead_open(a->aead, KEYCHECK_ID, KEYCHECK_EPOCH, blob, len, out, sizeof out);
        OPENSSL_cleanse(out, sizeof out);
        return r < 0 ? store_fail(b, -EKEYREJECTED, "The two databases are sealed under different master keys") : 0;
}

/* A device's generations as a dump or a load has them: the committed one of its epoch, of
 * the vault's sealed length, for an active device; a pending one exactly when the row says
 * so, of the next generation; none for a revoked device (its vaults were erased). */
static int raw_vaults_check(struct store *s, const struct store_device *d, const struct store_raw_vault v[2]) {
        size_t sealed_len = STORE_SEALED_LEN((size_t) d->n * d->m);
        bool ok;

        if (d->status == STORE_REVOKED)
                ok = !v[0].present && !v[1].present && !d->has_pending;
        else
                ok = v[0].present && v[0].epoch == d->epoch && v[0].len == sealed_len && v[0].blob &&
                     v[1].present == d->has_pending &&
                     (!v[1].present || (d->epoch != UINT64_MAX && v[1].epoch == d->epoch + 1 &&
                                        v[1].len == sealed_len && v[1].blob));
        return ok ? 0 : store_fail(s, -EBADMSG, "Device '%s' has vaults that do not match its row", d->id);
}

struct dump_ctx {
        struct store *s;
        const struct store_dump_cb *cb;
        void *userdata;
};

static int dump_device(const struct store_row *row, const struct store_raw_vault vaults[2], void *userdata) {
        struct dump_ctx *c = userdata;
        struct store_device d;
        int r;

        r = device_from_row(c->s, row, &d);
        if (r >= 0)
                r = raw_vaults_check(c->s, &d, vaults);
        return r < 0 ? r : c->cb->device(&d, vaults, c->userdata);
}

static int dump_audit(int64_t time, const char *device, const char *peer, const char *outcome, int64_t epoch,
                      void *userdata) {
        struct dump_ctx *c = userdata;

        if ((device && !store_id_valid(device)) || !text_valid(peer, STORE_PEER_MAX) ||
            !text_valid(outcome, STORE_OUTCOME_MAX))
                return store_fail(c->s, -EBADMSG, "The database has a corrupt audit row");
        return c->cb->audit(time, device, peer, outcome, (uint64_t) epoch, c->userdata);
}

static int dump_summary(int64_t time, const char *outcome, int64_t count, void *userdata) {
        struct dump_ctx *c = userdata;

        if (!text_valid(outcome, STORE_OUTCOME_MAX) || count < 0)
                return store_fail(c->s, -EBADMSG, "The database has a corrupt audit summary row");
        return c->cb->summary(time, outcome, (uint64_t) count, c->userdata);
}

/* Checked as store_aggregate_list() checks its rows. */
static int dump_aggregate(const char *name, int64_t count, double sum, double min, double max, void *userdata) {
        struct dump_ctx *c = userdata;
        struct aggregate_ctx a = { c->s, c->cb->aggregate, c->userdata };

        return aggregate_row(name, count, sum, min, max, &a);
}

int store_dump(struct store *s, const struct store_dump_cb *cb, void *userdata) {
        static const struct store_dump_ops ops = {
                .device = dump_device,
                .audit = dump_audit,
                .summary = dump_summary,
                .aggregate = dump_aggregate,
        };
        struct dump_ctx c = { s, cb, userdata };
        int r;

        if (!cb || !cb->device || !cb->audit || !cb->summary || !cb->aggregate)
                return store_fail(s, -EINVAL, "Invalid arguments to store_dump()");
        r = s->ops->dump(s->db, &ops, &c);
        return r < 0 ? r : 0;
}

int store_load_begin(struct store *s) {
        int r = s->ops->load_begin(s->db);

        if (r == -ENOTEMPTY)
                return store_fail(s, r, "The database is not empty: it holds devices, audit rows or aggregates");
        return r < 0 ? r : 0;
}

int store_load_device(struct store *s, const struct store_device *dev, const struct store_raw_vault vaults[2]) {
        int r;

        if (!store_id_valid(dev->id))
                return check_id(s, dev->id);
        if (!params_valid(dev->profile, dev->n, dev->m, dev->p) || !profile_entry(dev->profile, dev->kex) ||
            (dev->status != STORE_ACTIVE && dev->status != STORE_REVOKED))
                return store_fail(s, -EINVAL, "Invalid device '%s'", dev->id);
        r = raw_vaults_check(s, dev, vaults);
        if (r < 0)
                return r;
        return s->ops->load_device(s->db, dev, vaults);
}

static int fold_set(struct aggregate *a, bool found, void *userdata) {
        const struct aggregate *v = userdata;

        (void) found;
        a->count = v->count;
        a->sum = v->sum;
        a->min = v->min;
        a->max = v->max;
        return 0;
}

int store_load_aggregate(struct store *s, const struct aggregate *a) {
        struct aggregate out = { 0 };
        int r;

        if (!aggregate_name_valid(a->name))
                return store_fail(s, -EINVAL, "Invalid aggregate name");
        r = aggregate_check(s, a);
        if (r < 0)
                return r;
        strcpy(out.name, a->name);
        r = s->ops->aggregate_update(s->db, a->name, fold_set, (void *) a, &out);
        return r < 0 ? r : 0;
}

struct audit_ctx {
        store_audit_cb cb;
        void *userdata;
};

static int audit_row(int64_t time, const char *device, const char *peer, const char *outcome, int64_t epoch,
                     void *userdata) {
        struct audit_ctx *c = userdata;

        return c->cb(time, device ? device : "", peer ? peer : "", outcome ? outcome : "", (uint64_t) epoch,
                     c->userdata);
}

int store_audit_list(struct store *s, const char *id, int64_t since, store_audit_cb cb, void *userdata) {
        struct audit_ctx c = { cb, userdata };
        int r = s->ops->audit_list(s->db, id, since, audit_row, &c);

        return r < 0 ? r : 0;
}
