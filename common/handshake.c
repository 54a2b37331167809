/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "handshake.h"

static int os_bytes(void *userdata, enum hs_value what, uint8_t *out, size_t len) {
        return crypto_random(out, len);
}

static int os_challenge(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                        const struct challenge *avoid, struct challenge *ret) {
        return challenge_generate(ret, n, p, avoid);
}

const struct hs_random hs_random_os = {
        .bytes = os_bytes,
        .challenge = os_challenge,
};

int hs_draw_bytes(const struct hs_random *rng, enum hs_value what, uint8_t *out, size_t len) {
        int r;

        r = rng->bytes(rng->userdata, what, out, len);
        if (r < 0)
                OPENSSL_cleanse(out, len);
        return r < 0 ? r : 0;
}

/* An injected source is trusted no more than a peer: what it returns must be a valid challenge. */
int hs_draw_challenge(const struct hs_random *rng, enum hs_value what, uint16_t n, uint8_t p,
                      const struct challenge *avoid, struct challenge *ret) {
        struct challenge c = { 0 };
        int r;

        r = rng->challenge(rng->userdata, what, n, p, avoid, &c);
        if (r >= 0 && (challenge_validate(&c, n, p) < 0 || (avoid && challenge_disjoint(&c, avoid) < 0)))
                r = -EINVAL;
        if (r >= 0)
                *ret = c;
        OPENSSL_cleanse(&c, sizeof c);
        return r < 0 ? r : 0;
}

int hs_transcript_hash(const struct hs_transcript *ts, unsigned upto, uint8_t out[SV_HASH_LEN]) {
        const void *pieces[] = { ts->m1, ts->m2, ts->m3, ts->m4 };
        const size_t lens[] = { ts->m1_len, ts->m2_len, ts->m3_len, ts->m4_len };

        if (upto < 2 || upto > 4)
                return -EINVAL;
        return crypto_sha256_v(pieces, lens, upto, out);
}

int hs_next_vault(const struct vault_params *params, const uint8_t *keys, const struct hs_transcript *ts,
                  const uint8_t u[SV_KEY_LEN], uint8_t *next_vault) {
        uint8_t key[SV_HELLO_FRAME_MAX + SV_CHALLENGE_FRAME_MAX + SV_RESPONSE_FRAME_MAX + SV_CONFIRM_FRAME_LEN];
        const struct profile_info *pi = profile_find(params->profile, vault_wire_params(params).kex);
        size_t len = 0;
        int r;

        if (!pi)
                return -EINVAL;
        if (pi->keys == PROFILE_KEYS_HKDF)
                return vault_update_hardened(keys, params, u, next_vault);

        /* The paper keys its update with the whole transcript M1 || M2 || M3 || M4. */
        memcpy(key + len, ts->m1, ts->m1_len), len += ts->m1_len;
        memcpy(key + len, ts->m2, ts->m2_len), len += ts->m2_len;
        memcpy(key + len, ts->m3, ts->m3_len), len += ts->m3_len;
        memcpy(key + len, ts->m4, ts->m4_len), len += ts->m4_len;
        r = vault_update_paper(keys, params, key, len, next_vault);
        OPENSSL_cleanse(key, sizeof key);
        return r;
}
