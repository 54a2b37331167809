/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "keysched.h"
#include "profile.h"

/* How a profile derives its keys (the table's `keys`), or -EINVAL for an unknown profile. */
static int keys_of(uint8_t profile) {
        const struct profile_info *pi = profile_find(profile, SV_KEX_NONE);

        return pi ? (int) pi->keys : -EINVAL;
}

int keysched_k3(uint8_t profile, const uint8_t th2[SV_HASH_LEN], const uint8_t *x1, uint8_t m,
                uint8_t out[SV_KEY_LEN], size_t *ret_len) {
        int r;

        switch (keys_of(profile)) {
        case PROFILE_KEYS_HKDF:
                r = crypto_hkdf(th2, SV_HASH_LEN, x1, m, "sv1 k3", out, SV_KEY_LEN);
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
                const uint8_t t1[SV_T_LEN], uint8_t out[SV_KEY_LEN], size_t *ret_len) {
        uint8_t ikm[SV_KEY_MAX + SV_T_LEN];
        int r;

        switch (keys_of(profile)) {
        case PROFILE_KEYS_HKDF:
                memcpy(ikm, x2, m);
                memcpy(ikm + m, t1, SV_T_LEN);
                r = crypto_hkdf(th3, SV_HASH_LEN, ikm, m + SV_T_LEN, "sv1 k4", out, SV_KEY_LEN);
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
                    const uint8_t t1[SV_T_LEN], const uint8_t t2[SV_T_LEN], struct keysched_final *ret) {
        struct keysched_final f = { 0 };
        uint8_t t[SV_T_LEN], s[32];
        int keys = keys_of(profile), r;

        if (keys < 0)
                return keys;
        for (unsigned i = 0; i < SV_T_LEN; i++)
                t[i] = t1[i] ^ t2[i];
        r = crypto_hkdf_extract(th4, SV_HASH_LEN, t, sizeof t, s);
        if (r >= 0)
                r = crypto_hkdf_expand(s, "sv1 k5", f.k5, sizeof f.k5);
        if (r >= 0 && keys == PROFILE_KEYS_HKDF) {
                r = crypto_hkdf_expand(s, "sv1 session", f.session_key, sizeof f.session_key);
                if (r >= 0)
                        r = crypto_hkdf_expand(s, "sv1 update", f.u, sizeof f.u);
        } else if (r >= 0)
                memcpy(f.session_key, t, sizeof t);
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
