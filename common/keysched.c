/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "keysched.h"
#include "profile.h"

/* How a profile derives its keys (the table's `keys`), or -EINVAL for an unknown profile or
 * a Z the profile has no key share for (§10: z_len is 0 or SV_X25519_LEN). */
static int keys_of(uint8_t profile, const uint8_t *z, size_t z_len) {
        const struct profile_info *pi;

        if (z_len != 0 && (z_len != SV_X25519_LEN || !z))
                return -EINVAL;
        pi = profile_find(profile, z_len ? SV_KEX_X25519 : SV_KEX_NONE);
        return pi ? (int) pi->keys : -EINVAL;
}

int keysched_k3(uint8_t profile, const uint8_t th2[SV_HASH_LEN], const uint8_t *x1, uint8_t m,
                const uint8_t *z, size_t z_len, uint8_t out[SV_KEY_LEN], size_t *ret_len) {
        uint8_t ikm[SV_KEY_MAX + SV_X25519_LEN];
        int r;

        switch (keys_of(profile, z, z_len)) {
        case PROFILE_KEYS_HKDF:
                memcpy(ikm, x1, m);
                if (z_len)
                        memcpy(ikm + m, z, z_len);
                r = crypto_hkdf(th2, SV_HASH_LEN, ikm, m + z_len, "sv1 k3", out, SV_KEY_LEN);
                OPENSSL_cleanse(ikm, sizeof ikm);
                if (r < 0)
                        return r;
                *ret_len = SV_KEY_LEN;
                return 0;
        case PROFILE_KEYS_RAW:
                memcpy(out, x1, m);
                *ret_len = m;
                return 0;
        default:
                return -EINVAL;
        }
}

int keysched_k4(uint8_t profile, const uint8_t th3[SV_HASH_LEN], const uint8_t *x2, uint8_t m,
                const uint8_t t1[SV_T_LEN], const uint8_t *z, size_t z_len,
                uint8_t out[SV_KEY_LEN], size_t *ret_len) {
        uint8_t ikm[SV_KEY_MAX + SV_T_LEN + SV_X25519_LEN];
        int r;

        switch (keys_of(profile, z, z_len)) {
        case PROFILE_KEYS_HKDF:
                memcpy(ikm, x2, m);
                memcpy(ikm + m, t1, SV_T_LEN);
                if (z_len)
                        memcpy(ikm + m + SV_T_LEN, z, z_len);
                r = crypto_hkdf(th3, SV_HASH_LEN, ikm, m + SV_T_LEN + z_len, "sv1 k4", out, SV_KEY_LEN);
                OPENSSL_cleanse(ikm, sizeof ikm);
                if (r < 0)
                        return r;
                *ret_len = SV_KEY_LEN;
                return 0;
        case PROFILE_KEYS_RAW:
                for (unsigned i = 0; i < m; i++)
                        out[i] = x2[i] ^ t1[i];
                *ret_len = m;
                return 0;
        default:
                return -EINVAL;
        }
}

void keysched_final_wipe(struct keysched_final *f) {
        OPENSSL_cleanse(f, sizeof *f);
}

int keysched_finish(uint8_t profile, const uint8_t th4[SV_HASH_LEN],
                    const uint8_t t1[SV_T_LEN], const uint8_t t2[SV_T_LEN], const uint8_t *z, size_t z_len,
                    struct keysched_final *ret) {
        struct keysched_final f = { 0 };
        uint8_t t[SV_T_LEN + SV_X25519_LEN], s[32];
        int keys = keys_of(profile, z, z_len), r;

        if (keys < 0)
                return keys;
        for (unsigned i = 0; i < SV_T_LEN; i++)
                t[i] = t1[i] ^ t2[i];
        if (z_len)
                memcpy(t + SV_T_LEN, z, z_len);
        r = crypto_hkdf_extract(th4, SV_HASH_LEN, t, SV_T_LEN + z_len, s);
        if (r >= 0)
                r = crypto_hkdf_expand(s, "sv1 k5", f.k5, sizeof f.k5);
        if (r >= 0 && keys == PROFILE_KEYS_HKDF) {
                r = crypto_hkdf_expand(s, "sv1 session", f.session_key, sizeof f.session_key);
                if (r >= 0)
                        r = crypto_hkdf_expand(s, "sv1 update", f.u, sizeof f.u);
        } else if (r >= 0)
                memcpy(f.session_key, t, SV_T_LEN);
        if (r >= 0) {
                memcpy(f.s, s, sizeof f.s);
                *ret = f;
        }
        keysched_final_wipe(&f);
        OPENSSL_cleanse(t, sizeof t);
        OPENSSL_cleanse(s, sizeof s);
        return r;
}

int keysched_seal(const uint8_t *key, size_t key_len, const uint8_t th[SV_HASH_LEN],
                  const void *pt, size_t pt_len, uint8_t *out) {
        return crypto_aead_seal(key, key_len, th, th, SV_HASH_LEN, pt, pt_len, out);
}

int keysched_open(const uint8_t *key, size_t key_len, const uint8_t th[SV_HASH_LEN],
                  const uint8_t *in, size_t in_len, uint8_t *pt) {
        return crypto_aead_open(key, key_len, th, th, SV_HASH_LEN, in, in_len, pt);
}
