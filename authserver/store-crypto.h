/* SPDX-License-Identifier: MIT */
#pragma once

/* At-rest encryption of vault blobs, private to the store. */

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

/* Defined in store.c: sets the message store_last_error(NULL) returns, and returns r. */
int store_thread_errorf(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
