/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "proto.h"
#include "vault.h"

/*
 * The vault file of vaultd (docs/vault-file.md) as pure code: no I/O, no TPM. A file is a
 * header that is entirely AEAD associated data, followed by AES-256-GCM of the payload
 *
 *   payload = counter_auth[32] || vault[n·m]
 *
 * under key = HKDF(salt = u64 counter, ikm = KEK, info = "sv1 vault-file key", 32) and the
 * header's IV. Decoding is strict: magic and version first, every length bounded before it is
 * used, the file consumed exactly.
 */
#define VAULTFILE_MAGIC         "SVVAULT\0"
#define VAULTFILE_MAGIC_LEN     8
#define VAULTFILE_VERSION       2       /* written for kex none; 1 (no kek_auth byte) is still read */
#define VAULTFILE_VERSION_1     1
#define VAULTFILE_VERSION_KEX   3       /* written for a vault with a key share: 2 + a kex byte */
/* How the sealed KEK is authorized (kek_auth): by an empty auth value (version 1 files, and
 * key-file = none), or by an auth value derived from vaultd's key file. */
#define VAULTFILE_KEK_AUTH_NONE         0
#define VAULTFILE_KEK_AUTH_KEY_FILE     1
/* Bounds of the TPM blobs carried in the header; they match vaultd/tpm.h (checked there). */
#define VAULTFILE_NAME_MAX      68      /* TPM name: 2-byte nameAlg || digest */
#define VAULTFILE_BLOB_MAX      512     /* marshalled TPM2B_PUBLIC / TPM2B_PRIVATE */
#define VAULTFILE_KEK_LEN       32
#define VAULTFILE_AUTH_LEN      32      /* NV counter auth value */
#define VAULTFILE_KEY_INFO      "sv1 vault-file key"
/* Largest header: fixed fields + id + server + name + two blobs. */
#define VAULTFILE_HEADER_MAX    (VAULTFILE_MAGIC_LEN + 2 + 1 + SV_ID_MAX + 1 + 2 + 1 + 1 + 8 + \
                                 1 + BUNDLE_SERVER_MAX + 2 + VAULTFILE_NAME_MAX + \
                                 2 * (2 + VAULTFILE_BLOB_MAX) + 4 + 1 + 1 + 4 + 8 + SV_GCM_IV_LEN + 4)
#define VAULTFILE_CT_LEN(n_m)   (VAULTFILE_AUTH_LEN + (size_t) (n_m) + SV_TAG_LEN)
#define VAULTFILE_MAX           (VAULTFILE_HEADER_MAX + VAULTFILE_CT_LEN(SV_VAULT_MAX))

struct vaultfile_header {
        struct vault_params params;             /* params.kex: the kex byte of version 3, else none */
        char server[BUNDLE_SERVER_MAX + 1];     /* "" if none */
        uint8_t parent_name[VAULTFILE_NAME_MAX];
        size_t parent_name_len;
        uint8_t sealed_pub[VAULTFILE_BLOB_MAX];
        size_t sealed_pub_len;
        uint8_t sealed_priv[VAULTFILE_BLOB_MAX];
        size_t sealed_priv_len;
        uint32_t pcr_mask;
        uint8_t kek_auth;                       /* VAULTFILE_KEK_AUTH_* */
        uint32_t nv_index;
        uint64_t counter;                       /* NV counter value this generation is bound to */
        uint8_t iv[SV_GCM_IV_LEN];
};

/* The exact size of the file for h (header + ciphertext + tag); 0 if h is invalid. */
size_t vaultfile_size(const struct vaultfile_header *h);

/*
 * Encodes h and encrypts counter_auth || vault (vault_size(&h->params) bytes) under the file key
 * derived from kek and h->counter, into out (at least vaultfile_size(h) bytes). The caller picks
 * a fresh random h->iv for every file it writes.
 */
int vaultfile_seal(const struct vaultfile_header *h, const uint8_t kek[VAULTFILE_KEK_LEN],
                   const uint8_t counter_auth[VAULTFILE_AUTH_LEN], const uint8_t *vault,
                   uint8_t *out, size_t cap, size_t *ret_len);

/*
 * Decodes the header only (no key needed): -EBADMSG for anything malformed (bad magic, lengths,
 * parameters, trailing or missing bytes), -EPROTONOSUPPORT for another format version.
 */
int vaultfile_decode(const uint8_t *file, size_t len, struct vaultfile_header *ret);

/*
 * Authenticates the whole file under kek and decrypts the payload into counter_auth and vault
 * (vault_size() bytes). -EBADMSG if the header was altered or the key is wrong; on failure both
 * outputs are wiped. h must come from vaultfile_decode() of the same bytes.
 */
int vaultfile_open(const uint8_t *file, size_t len, const struct vaultfile_header *h,
                   const uint8_t kek[VAULTFILE_KEK_LEN], uint8_t counter_auth[VAULTFILE_AUTH_LEN],
                   uint8_t *vault);

/* key = HKDF(salt = u64(counter), ikm = kek, info = VAULTFILE_KEY_INFO, 32). */
int vaultfile_key(const uint8_t kek[VAULTFILE_KEK_LEN], uint64_t counter, uint8_t out[32]);
