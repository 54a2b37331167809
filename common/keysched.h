/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/*
 * The key schedule of protocol §4 for both profiles. K3 and K4 are 32 bytes in the
 * hardened profile and m bytes (the raw XOR keys of the paper) in the paper profile;
 * `*ret_len` says which. Outputs are wiped on failure.
 *
 * `z` is the X25519 secret Z of revision 1.1 §10, z_len bytes: SV_X25519_LEN with a key
 * share (hardened only, else -EINVAL), 0 (z may be NULL) without; it is appended to the
 * input keying material of K3, K4 and S exactly as §10 says.
 */
int keysched_k3(uint8_t profile, const uint8_t th2[SV_HASH_LEN], const uint8_t *x1, uint8_t m,
                const uint8_t *z, size_t z_len, uint8_t out[SV_KEY_LEN], size_t *ret_len);
int keysched_k4(uint8_t profile, const uint8_t th3[SV_HASH_LEN], const uint8_t *x2, uint8_t m,
                const uint8_t t1[SV_T_LEN], const uint8_t *z, size_t z_len,
                uint8_t out[SV_KEY_LEN], size_t *ret_len);

/* Everything that follows from S = HKDF-Extract(TH4, t || Z), t = t1 xor t2. `u` is not used
 * by the paper profile. */
struct keysched_final {
        uint8_t k5[SV_KEY_LEN];
        uint8_t session_key[SV_KEY_LEN];
        uint8_t u[SV_KEY_LEN];
        uint8_t s[SV_KEY_LEN];          /* S itself: the data channel's secrets follow from it (§11) */
};
int keysched_finish(uint8_t profile, const uint8_t th4[SV_HASH_LEN],
                    const uint8_t t1[SV_T_LEN], const uint8_t t2[SV_T_LEN], const uint8_t *z, size_t z_len,
                    struct keysched_final *ret);
void keysched_final_wipe(struct keysched_final *f);

/* Seal(K, TH, pt) and its inverse (§1): nonce TH[0..12), associated data all of TH. */
int keysched_seal(const uint8_t *key, size_t key_len, const uint8_t th[SV_HASH_LEN],
                  const void *pt, size_t pt_len, uint8_t *out);
int keysched_open(const uint8_t *key, size_t key_len, const uint8_t th[SV_HASH_LEN],
                  const uint8_t *in, size_t in_len, uint8_t *pt);
