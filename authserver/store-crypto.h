/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * At-rest encryption of vault blobs and the master key file, private to the store: a library
 * below store.c that knows nothing of it. Functions return -errno (and, for the key file, the
 * step that failed); store.c writes the messages.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_BLOB_IV_LEN       12
#define STORE_BLOB_TAG_LEN      16
#define STORE_BLOB_OVERHEAD     (STORE_BLOB_IV_LEN + STORE_BLOB_TAG_LEN)
_Static_assert(STORE_SEALED_LEN(0) == STORE_BLOB_OVERHEAD, "store.h's sealed length is out of step");
#define STORE_BLOB_MAX          (STORE_VAULT_MAX + STORE_BLOB_OVERHEAD)

struct store_aead;

int store_aead_new(const uint8_t master_key[STORE_MASTER_KEY_LEN], struct store_aead **ret);
void store_aead_free(struct store_aead *a);

/* Seals len bytes of the vault of generation epoch of device id into out, which holds
 * len + STORE_BLOB_OVERHEAD bytes: iv || ciphertext || tag. */
int store_aead_seal(struct store_aead *a, const char *id, uint64_t epoch,
                    const uint8_t *vault, size_t len, uint8_t *out);

/* Opens a blob of exactly len + STORE_BLOB_OVERHEAD bytes into out (len bytes); -EBADMSG if
 * it does not authenticate, with out wiped. */
int store_aead_open(struct store_aead *a, const char *id, uint64_t epoch,
                    const uint8_t *blob, size_t blob_len, uint8_t *out, size_t len);

/* HKDF-Expand(master, label || id, 32) for a label other than the vault keys' own: a value
 * only the holder of the master key can compute, the same for an id across restarts. */
int store_aead_keyed_hash(struct store_aead *a, const char *label, const char *id, uint8_t out[32]);

/*
 * The master key file (store.h's store_master_key_load() and _create() are these with a
 * message). On failure the step that failed is written to *ret_failure, so that the store
 * can say what went wrong; this file never formats a message itself.
 */
enum store_key_step {
        STORE_KEY_OPEN,                 /* open() failed: -errno */
        STORE_KEY_LOCK,                 /* no locked page for the bytes read: -errno */
        STORE_KEY_STAT,                 /* fstat() failed: -errno */
        STORE_KEY_NOT_REGULAR,          /* -EINVAL */
        STORE_KEY_MODE,                 /* group or others may access it: -EPERM */
        STORE_KEY_READ,                 /* read() failed: -errno */
        STORE_KEY_NOT_HEX,              /* 64 bytes, not all hex digits: -EBADMSG */
        STORE_KEY_LENGTH,               /* neither 32 bytes nor 64 hex digits: -EBADMSG */
        STORE_KEY_LOCK_NEW,             /* no locked page for a new key: -errno */
        STORE_KEY_CREATE,               /* open(O_CREAT|O_EXCL) failed: -errno (-EEXIST) */
        STORE_KEY_RANDOM,               /* no randomness: -EIO */
        STORE_KEY_WRITE,                /* write() failed: -errno */
        STORE_KEY_SYNC,                 /* fsync() of the file failed: -errno */
        STORE_KEY_SYNC_DIR,             /* fsync() of its directory failed: -errno */
};

struct store_key_failure {
        enum store_key_step step;
        unsigned mode;                  /* the file's permission bits, for STORE_KEY_MODE */
};

int store_key_file_load(const char *path, uint8_t ret_key[STORE_MASTER_KEY_LEN],
                        struct store_key_failure *ret_failure);
int store_key_file_create(const char *path, struct store_key_failure *ret_failure);
