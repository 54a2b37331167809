/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Thin wrappers over OpenSSL 3 (crypto.c: EVP, algorithms fetched once per process, not
 * once per message). HMAC-SHA256 and the KDFs built on it are computed in hmac.c from
 * precomputed keyed SHA-256 states instead, byte for byte what EVP_MAC and EVP_KDF give.
 * All functions return 0 or a negative errno (-EIO for an OpenSSL failure, -EINVAL for a
 * length out of range, -EBADMSG for a failed tag).
 */
int crypto_random(void *out, size_t len);

int crypto_sha256(const void *data, size_t len, uint8_t out[32]);
/* SHA-256 over several pieces, so callers need not concatenate. */
int crypto_sha256_v(const void *const *pieces, const size_t *lens, size_t count, uint8_t out[32]);

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32]);
int crypto_hmac_sha512(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[64]);

int crypto_hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, uint8_t prk[32]);
int crypto_hkdf_expand(const uint8_t prk[32], const char *info, void *out, size_t out_len);
int crypto_hkdf(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
                const char *info, void *out, size_t out_len);
/* HKDF-Expand of one PRK under `count` infos, 32 bytes into each outs[i], the PRK keyed once
 * (what the record layer derives per record). Every output wiped on failure. */
int crypto_hkdf_expand32_v(const uint8_t prk[32], const char *const *infos, uint8_t *const *outs, size_t count);

/* KBKDF's message per block: u32 counter, label, 0x00, context, u32 L·8 (the vault's needs
 * 26 + SV_ID_MAX bytes). */
#define CRYPTO_KBKDF_INPUT_MAX  128
/* NIST SP 800-108 counter mode, HMAC-SHA256 (protocol §1): 1..2^29-1 output bytes, label
 * and context together at most CRYPTO_KBKDF_INPUT_MAX - 9 bytes, else -EINVAL. */
int crypto_kbkdf(const uint8_t *key, size_t key_len, const char *label,
                 const void *context, size_t context_len, void *out, size_t out_len);

/* AES-GCM, 16- or 32-byte keys, 12-byte IV, 16-byte tag appended to/expected after the ciphertext. */
int crypto_aead_seal(const uint8_t *key, size_t key_len, const uint8_t iv[12],
                     const void *aad, size_t aad_len, const void *pt, size_t pt_len, uint8_t *out);
int crypto_aead_open(const uint8_t *key, size_t key_len, const uint8_t iv[12],
                     const void *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *pt);
