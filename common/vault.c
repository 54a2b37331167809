/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "crypto.h"
#include "vault.h"

bool vault_device_id_valid(const char *id, size_t len) {
        if (len < SV_ID_MIN || len > SV_ID_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = id[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == ':' || c == '-'))
                        return false;
        }
        return true;
}

int vault_params_validate(const struct vault_params *v) {
        if (v->id_len != strnlen(v->device_id, sizeof v->device_id) ||
            !vault_device_id_valid(v->device_id, v->id_len))
                return -EINVAL;
        return profile_check(v->profile, v->kex, v->n, v->m, v->p);
}

int vault_params_set_id(struct vault_params *v, const char *id) {
        size_t len = strnlen(id, SV_ID_MAX + 1);

        if (!vault_device_id_valid(id, len))
                return -EINVAL;
        memcpy(v->device_id, id, len);
        v->device_id[len] = '\0';
        v->id_len = (uint8_t) len;
        return 0;
}

const char *vault_profile_to_string(uint8_t profile) {
        return profile_name(profile) ?: "unknown";
}

int vault_profile_from_string(const char *s) {
        return profile_from_name(s);
}

int challenge_validate(const struct challenge *c, uint16_t n, uint8_t p) {
        if (c->p != p || p < SV_P_MIN || p > SV_P_MAX)
                return -EBADMSG;
        for (unsigned i = 0; i < c->p; i++) {
                if (c->idx[i] >= n)
                        return -EBADMSG;
                if (i > 0 && c->idx[i] <= c->idx[i - 1])
                        return -EBADMSG;
        }
        return 0;
}

int challenge_disjoint(const struct challenge *a, const struct challenge *b) {
        unsigned i = 0, j = 0;

        /* Both are sorted: one merge pass finds any shared index. */
        while (i < a->p && j < b->p) {
                if (a->idx[i] == b->idx[j])
                        return -EBADMSG;
                if (a->idx[i] < b->idx[j])
                        i++;
                else
                        j++;
        }
        return 0;
}

static int os_draw(void *userdata, void *out, size_t len) {
        return crypto_random(out, len);
}

int challenge_generate(struct challenge *ret, uint16_t n, uint8_t p, const struct challenge *avoid) {
        return challenge_generate_from(ret, n, p, avoid, os_draw, NULL);
}

int challenge_generate_from(struct challenge *ret, uint16_t n, uint8_t p, const struct challenge *avoid,
                            int (*draw)(void *userdata, void *out, size_t len), void *userdata) {
        uint8_t taken[SV_N_MAX / 8] = { 0 };
        uint8_t pool[128];
        size_t pool_pos = sizeof pool;
        unsigned avail, picked = 0;
        /* Largest multiple of n below 2^16: draws at or above it are rejected, so no index is favoured. */
        uint32_t limit;
        struct challenge c = { .p = p };
        int r;

        if (n < SV_N_MIN || n > SV_N_MAX || p < SV_P_MIN || p > SV_P_MAX)
                return -EINVAL;
        limit = 65536u - 65536u % n;
        avail = n;
        if (avoid) {
                for (unsigned i = 0; i < avoid->p; i++) {
                        uint16_t k = avoid->idx[i];

                        if (k >= n)
                                return -EINVAL;
                        if (!(taken[k / 8] & (1u << (k % 8)))) {
                                taken[k / 8] |= (uint8_t) (1u << (k % 8));
                                avail--;
                        }
                }
        }
        if (avail < p)
                return -EINVAL;

        while (picked < p) {
                uint16_t k;

                if (pool_pos + 2 > sizeof pool) {
                        r = draw(userdata, pool, sizeof pool);
                        if (r < 0)
                                goto out;
                        pool_pos = 0;
                }
                k = be16_get(pool + pool_pos);
                pool_pos += 2;
                if (k >= limit)
                        continue;
                k %= n;
                if (taken[k / 8] & (1u << (k % 8)))
                        continue;
                taken[k / 8] |= (uint8_t) (1u << (k % 8));
                c.idx[picked++] = k;
        }

        for (unsigned i = 1; i < p; i++)
                for (unsigned j = i; j > 0 && c.idx[j - 1] > c.idx[j]; j--) {
                        uint16_t t = c.idx[j];

                        c.idx[j] = c.idx[j - 1];
                        c.idx[j - 1] = t;
                }
        *ret = c;
        r = 0;
out:
        /* C2 is secret on the device (it travels inside M3's AEAD): leave no copy behind. */
        OPENSSL_cleanse(pool, sizeof pool);
        OPENSSL_cleanse(taken, sizeof taken);
        OPENSSL_cleanse(&c, sizeof c);
        return r;
}

void vault_combine(const uint8_t *keys, const struct vault_params *v, const struct challenge *c, uint8_t *out) {
        memset(out, 0, v->m);
        for (unsigned i = 0; i < c->p; i++) {
                const uint8_t *k = keys + (size_t) c->idx[i] * v->m;

                for (unsigned b = 0; b < v->m; b++)
                        out[b] ^= k[b];
        }
}

int vault_update_hardened(const uint8_t *keys, const struct vault_params *v,
                          const uint8_t u[SV_KEY_LEN], uint8_t *out) {
        uint8_t prk[32], context[SV_ID_MAX + 8];
        int r;

        if (v->epoch == UINT64_MAX)
                return -EOVERFLOW;
        r = crypto_hmac_sha256(u, SV_KEY_LEN, keys, vault_size(v), prk);
        if (r < 0)
                goto out;
        memcpy(context, v->device_id, v->id_len);
        be64_put(context + v->id_len, v->epoch + 1);
        r = crypto_kbkdf(prk, sizeof prk, "sv1 vault", context, v->id_len + 8u, out, vault_size(v));
out:
        OPENSSL_cleanse(prk, sizeof prk);
        return r;
}

int vault_update_paper(const uint8_t *keys, const struct vault_params *v,
                       const uint8_t *transcript, size_t transcript_len, uint8_t *out) {
        uint8_t h[64];
        size_t size = vault_size(v);
        int r;

        if (v->epoch == UINT64_MAX)
                return -EOVERFLOW;
        r = crypto_hmac_sha512(transcript, transcript_len, keys, size, h);
        if (r < 0)
                goto out;
        for (size_t off = 0, i = 0; off < size; off += 64, i++) {
                uint8_t pad[64];

                memcpy(pad, h, 64);
                for (int b = 0; b < 8; b++)
                        pad[56 + b] ^= (uint8_t) ((uint64_t) i >> (56 - 8 * b));
                for (size_t b = 0; b < 64 && off + b < size; b++)
                        out[off + b] = keys[off + b] ^ pad[b];
                OPENSSL_cleanse(pad, sizeof pad);
        }
out:
        OPENSSL_cleanse(h, sizeof h);
        return r;
}
