/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "buf.h"
#include "crypto.h"
#include "unit.h"

static uint64_t seed_value;
static bool seed_set;

uint64_t unit_seed(void) {
        const char *e;

        if (seed_set)
                return seed_value;
        e = getenv("UNIT_SEED");
        if (e && *e) {
                char *end;

                errno = 0;
                seed_value = strtoull(e, &end, 0);
                if (errno != 0 || *end != '\0') {
                        fprintf(stderr, "Invalid UNIT_SEED '%s'\n", e);
                        exit(99);
                }
        } else {
                struct timespec ts;

                /* A fresh seed per run explores more inputs; the TAP log keeps it. */
                clock_gettime(CLOCK_REALTIME, &ts);
                seed_value = (uint64_t) ts.tv_sec * 1000000007u ^ (uint64_t) ts.tv_nsec ^
                             (uint64_t) getpid() << 32;
        }
        seed_set = true;
        return seed_value;
}

int unit_run(Suite *s) {
        SRunner *sr;
        int failed;

        /* Fixed before Check forks, so that every test of this run sees the same seed. */
        printf("# UNIT_SEED=%" PRIu64 "\n", unit_seed());
        fflush(stdout);
        sr = srunner_create(s);
        srunner_set_tap(sr, "-");
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (failed > 0)
                printf("# %d failed; rerun with UNIT_SEED=%" PRIu64 "\n", failed, unit_seed());
        return failed == 0 ? 0 : 1;
}

void unit_rng_init(struct unit_rng *g, const char *label) {
        uint8_t s[8];
        const void *pieces[] = { s, label };
        const size_t lens[] = { sizeof s, strlen(label) };

        be64_put(s, unit_seed());
        *g = (struct unit_rng) { .pos = sizeof g->block };
        ck_assert_int_eq(crypto_sha256_v(pieces, lens, 2, g->key), 0);
}

void unit_rng_bytes(struct unit_rng *g, void *out, size_t len) {
        uint8_t *o = out;

        while (len > 0) {
                size_t take;

                if (g->pos == sizeof g->block) {
                        uint8_t ctr[8];
                        const void *pieces[] = { g->key, ctr };
                        const size_t lens[] = { sizeof g->key, sizeof ctr };

                        be64_put(ctr, g->counter++);
                        ck_assert_int_eq(crypto_sha256_v(pieces, lens, 2, g->block), 0);
                        g->pos = 0;
                }
                take = sizeof g->block - g->pos;
                if (take > len)
                        take = len;
                memcpy(o, g->block + g->pos, take);
                g->pos += take;
                o += take;
                len -= take;
        }
}

uint32_t unit_rng_below(struct unit_rng *g, uint32_t bound) {
        uint32_t limit, v;

        ck_assert_uint_gt(bound, 0);
        /* Rejection sampling: the largest multiple of bound below 2^32. */
        limit = (uint32_t) (0x100000000ull - 0x100000000ull % bound);
        do {
                uint8_t b[4];

                unit_rng_bytes(g, b, sizeof b);
                v = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
        } while (limit != 0 && v >= limit);
        return v % bound;
}

uint32_t unit_rng_range(struct unit_rng *g, uint32_t lo, uint32_t hi) {
        return lo + unit_rng_below(g, hi - lo + 1);
}

int unit_rng_challenge(struct unit_rng *g, uint16_t n, uint8_t p, const struct challenge *avoid,
                       struct challenge *ret) {
        uint8_t taken[SV_N_MAX] = { 0 };
        struct challenge c = { .p = p };
        unsigned avail = n;

        if (n == 0 || n > SV_N_MAX || p == 0 || p > SV_P_MAX)
                return -EINVAL;
        for (unsigned i = 0; avoid && i < avoid->p; i++)
                if (avoid->idx[i] < n && !taken[avoid->idx[i]]) {
                        taken[avoid->idx[i]] = 1;
                        avail--;
                }
        if (avail < p)
                return -EINVAL;
        for (unsigned picked = 0; picked < p;) {
                uint16_t k = (uint16_t) unit_rng_below(g, n);

                if (taken[k])
                        continue;
                taken[k] = 2;
                picked++;
        }
        /* Walking the map in order yields the indices sorted. */
        for (unsigned k = 0, i = 0; k < n; k++)
                if (taken[k] == 2)
                        c.idx[i++] = (uint16_t) k;
        *ret = c;
        return 0;
}

static int replay_bytes(void *userdata, enum hs_value what, uint8_t *out, size_t len) {
        struct unit_replay *r = userdata;

        ck_assert_int_lt(what, UNIT_HS_VALUES);
        r->calls[what]++;
        if (r->fail[what] < 0)
                return r->fail[what];
        if (r->have_bytes[what]) {
                if (len != r->len[what])
                        return -EINVAL;
                memcpy(out, r->bytes[what], len);
                return 0;
        }
        if (r->gen) {
                unit_rng_bytes(r->gen, out, len);
                return 0;
        }
        return crypto_random(out, len);
}

static int replay_challenge(void *userdata, enum hs_value what, uint16_t n, uint8_t p,
                            const struct challenge *avoid, struct challenge *ret) {
        struct unit_replay *r = userdata;

        ck_assert_int_lt(what, UNIT_HS_VALUES);
        r->calls[what]++;
        if (r->fail[what] < 0)
                return r->fail[what];
        if (r->have_challenge[what]) {
                *ret = r->chal[what];
                return 0;
        }
        if (r->gen)
                return unit_rng_challenge(r->gen, n, p, avoid, ret);
        return challenge_generate(ret, n, p, avoid);
}

void unit_replay_init(struct unit_replay *r, struct unit_rng *gen) {
        *r = (struct unit_replay) {
                .gen = gen,
                .rng = { .bytes = replay_bytes, .challenge = replay_challenge },
        };
        r->rng.userdata = r;
}

void unit_replay_bytes(struct unit_replay *r, enum hs_value what, const void *p, size_t len) {
        ck_assert_uint_le(len, SV_T_LEN);
        memcpy(r->bytes[what], p, len);
        r->len[what] = len;
        r->have_bytes[what] = true;
}

void unit_replay_challenge(struct unit_replay *r, enum hs_value what, const struct challenge *c) {
        r->chal[what] = *c;
        r->have_challenge[what] = true;
}

struct challenge unit_challenge(unsigned p, const uint16_t *idx) {
        struct challenge c = { .p = (uint8_t) p };

        ck_assert_uint_le(p, SV_P_MAX);
        for (unsigned i = 0; i < p; i++)
                c.idx[i] = idx[i];
        return c;
}

struct vault_params unit_params(const char *id, uint8_t profile, uint16_t n, uint8_t m, uint8_t p,
                                uint64_t epoch) {
        struct vault_params v = { .profile = profile, .n = n, .m = m, .p = p, .epoch = epoch };

        ck_assert_int_eq(vault_params_set_id(&v, id), 0);
        return v;
}

void unit_hs_init(struct unit_hs *h, const struct vault_params *params, const uint8_t *dev_keys,
                  const uint8_t *srv_keys, const struct hs_random *dev_rng, const struct hs_random *srv_rng) {
        size_t size = vault_size(params);

        memset(h, 0, sizeof *h);
        h->params = *params;
        h->srv_params = *params;
        h->dev_keys = dev_keys;
        h->srv_keys = srv_keys ? srv_keys : dev_keys;
        h->dev_next = calloc(1, size);
        h->srv_next = calloc(1, size);
        ck_assert_ptr_nonnull(h->dev_next);
        ck_assert_ptr_nonnull(h->srv_next);
        hs_device_init(&h->dev, params, dev_keys, dev_rng ? dev_rng : &hs_random_os);
        hs_server_init(&h->srv, srv_rng ? srv_rng : &hs_random_os, SV_DEFAULT_N, SV_DEFAULT_P);
}

void unit_hs_free(struct unit_hs *h) {
        free(h->dev_next);
        free(h->srv_next);
        h->dev_next = h->srv_next = NULL;
}

int unit_hs_step(struct unit_hs *h, enum unit_step step) {
        switch (step) {
        case UNIT_DEVICE_HELLO:
                return hs_device_hello(&h->dev, h->m1, sizeof h->m1, &h->m1_len);
        case UNIT_SERVER_HELLO:
                return hs_server_hello(&h->srv, h->m1, h->m1_len, &h->hello);
        case UNIT_SERVER_CHALLENGE:
                return hs_server_challenge(&h->srv, &h->srv_params, h->srv_keys, h->m2, sizeof h->m2, &h->m2_len);
        case UNIT_DEVICE_RESPOND:
                return hs_device_respond(&h->dev, h->m2, h->m2_len, h->m3, sizeof h->m3, &h->m3_len);
        case UNIT_SERVER_RESPOND:
                return hs_server_respond(&h->srv, h->m3, h->m3_len, h->srv_next, h->m4, sizeof h->m4, &h->m4_len);
        case UNIT_DEVICE_CONFIRM:
                return hs_device_confirm(&h->dev, h->m4, h->m4_len, h->dev_next, h->m5, sizeof h->m5, &h->m5_len);
        case UNIT_SERVER_COMMIT:
                return hs_server_commit(&h->srv, h->m5, h->m5_len);
        }
        ck_abort_msg("bad step %d", (int) step);
        return -EINVAL;
}

void unit_hs_run_to(struct unit_hs *h, enum unit_step last) {
        unit_hs_run(h, UNIT_DEVICE_HELLO, last);
}

void unit_hs_run(struct unit_hs *h, enum unit_step first, enum unit_step last) {
        for (int s = (int) first; s <= (int) last; s++) {
                int r = unit_hs_step(h, (enum unit_step) s);

                unit_assert(r == 0, "handshake step %d (%s n=%u m=%u p=%u epoch=%" PRIu64 "): %d",
                            s, vault_profile_to_string(h->params.profile), h->params.n, h->params.m,
                            h->params.p, h->params.epoch, r);
        }
}

uint8_t *unit_dup(const void *p, size_t len) {
        uint8_t *d = malloc(len);

        ck_assert_msg(d || len == 0, "out of memory");
        if (len > 0)
                memcpy(d, p, len);
        return d;
}

const char *unit_hex(const void *p, size_t len) {
        static char bufs[4][2 * 256 + 4];
        static unsigned next;
        char *s = bufs[next++ % 4];
        const uint8_t *b = p;
        size_t i;

        for (i = 0; i < len && i < 256; i++)
                snprintf(s + 2 * i, 3, "%02x", b[i]);
        s[2 * i] = '\0';
        if (i < len)
                strcpy(s + 2 * i, "...");
        return s;
}

bool unit_is_zero(const void *p, size_t len) {
        const uint8_t *b = p;

        for (size_t i = 0; i < len; i++)
                if (b[i])
                        return false;
        return true;
}

/* A little-endian u-coordinate from a decimal number, or from p = 2^255 - 19 plus delta. */
static void u_from_bn(const BIGNUM *bn, uint8_t out[32]) {
        ck_assert_int_eq(BN_bn2lebinpad(bn, out, 32), 32);
}

void unit_u_decimal(const char *dec, uint8_t out[32]) {
        BIGNUM *bn = NULL;

        ck_assert_int_gt(BN_dec2bn(&bn, dec), 0);
        u_from_bn(bn, out);
        BN_free(bn);
}

void unit_u_p_plus(long delta, uint8_t out[32]) {
        BIGNUM *bn = BN_new();

        ck_assert_ptr_nonnull(bn);
        ck_assert_int_eq(BN_set_bit(bn, 255) && BN_sub_word(bn, 19), 1);
        ck_assert_int_eq(delta < 0 ? BN_sub_word(bn, (BN_ULONG) -delta) : BN_add_word(bn, (BN_ULONG) delta), 1);
        u_from_bn(bn, out);
        BN_free(bn);
}

/*
 * Every small-order u-coordinate of RFC 7748 curve25519 and its twist, computed here from
 * the numbers (not copied from kex.c's table): 0, 1, the two of order 8, p-1, and the
 * non-canonical p and p+1; each also with bit 255 set, which X25519 ignores. 14 shares.
 */
void unit_small_order_points(uint8_t pts[UNIT_SMALL_ORDER_COUNT][32]) {
        unit_u_decimal("0", pts[0]);
        unit_u_decimal("1", pts[1]);
        unit_u_decimal("325606250916557431795983626356110631294008115727848805560023387167927233504", pts[2]);
        unit_u_decimal("39382357235489614581723060781553021112529911719440698176882885853963445705823", pts[3]);
        unit_u_p_plus(-1, pts[4]);
        unit_u_p_plus(0, pts[5]);
        unit_u_p_plus(1, pts[6]);
        for (int i = 0; i < 7; i++) {
                memcpy(pts[7 + i], pts[i], 32);
                pts[7 + i][31] |= 0x80;
        }
}

void unit_kbkdf_openssl(const uint8_t *key, size_t key_len, const char *label, const void *context,
                        size_t context_len, uint8_t *out, size_t out_len) {
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
        EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *) "counter", 0),
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *) "HMAC", 0),
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) key, key_len),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) label, strlen(label)),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) context, context_len),
                OSSL_PARAM_construct_end(),
        };

        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(EVP_KDF_derive(ctx, out, out_len, params), 1);
        EVP_KDF_CTX_free(ctx);
        EVP_KDF_free(kdf);
}
