/* SPDX-License-Identifier: MIT */

/* common/vault: parameters, challenges, X(C), and both vault updates (protocol §2, §5). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "vault.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t *vault_new(size_t size) {
        uint8_t *v = calloc(1, size);

        ck_assert_ptr_nonnull(v);
        return v;
}

/* ---- parameters ---------------------------------------------------------------------- */

START_TEST(test_device_id_valid) {
        static const struct {
                const char *id;
                size_t len;
                bool ok;
        } cases[] = {
                { "a", 1, true },
                { "sensor-0042", 11, true },
                { "A.Z_a:z-0.9", 11, true },
                { "", 0, false },
                { "a b", 3, false },
                { "a/b", 3, false },
                { "a@b", 3, false },
                { "a#b", 3, false },
                { "\xc3\xa9", 2, false },
                { "a\0b", 3, false },
                { "tab\t", 4, false },
                { "ok+", 3, false },
        };
        char id64[65], id65[66];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                ck_assert_msg(vault_device_id_valid(cases[i].id, cases[i].len) == cases[i].ok,
                              "case %zu '%s'", i, cases[i].id);
        /* Every single byte: exactly [A-Za-z0-9._:-]. */
        for (int c = 0; c < 256; c++) {
                char s = (char) c;
                bool want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '.' || c == '_' || c == ':' || c == '-';

                ck_assert_msg(vault_device_id_valid(&s, 1) == want, "byte 0x%02x", c);
        }
        memset(id64, 'x', 64);
        id64[64] = '\0';
        memset(id65, 'x', 65);
        id65[65] = '\0';
        ck_assert(vault_device_id_valid(id64, 64));
        ck_assert(!vault_device_id_valid(id65, 65));
}
END_TEST

START_TEST(test_params_validate) {
        char id64[65], id65[66];
        static const struct {
                const char *id;         /* NULL: the 64-byte id; "65": 65 bytes */
                uint8_t profile;
                uint16_t n;
                uint8_t m, p;
                int want;
        } cases[] = {
                { "dev", 1, 256, 16, 16, 0 },
                { "dev", 2, 256, 16, 16, 0 },
                { "dev", 0, 256, 16, 16, -EINVAL },
                { "dev", 3, 256, 16, 16, -EINVAL },
                { "dev", 1, 7, 16, 1, -EINVAL },
                { "dev", 1, 8, 16, 1, 0 },
                { "dev", 1, 8, 16, 4, 0 },              /* 2p == n */
                { "dev", 1, 8, 16, 5, -EINVAL },        /* 2p > n */
                { "dev", 1, 4096, 32, 64, 0 },
                { "dev", 1, 4097, 16, 16, -EINVAL },
                { "dev", 1, 0, 16, 1, -EINVAL },
                { "dev", 1, 65535, 16, 16, -EINVAL },
                { "dev", 1, 256, 15, 16, -EINVAL },
                { "dev", 1, 256, 17, 16, -EINVAL },
                { "dev", 1, 256, 24, 16, -EINVAL },
                { "dev", 1, 256, 32, 16, 0 },
                { "dev", 1, 256, 0, 16, -EINVAL },
                { "dev", 1, 256, 16, 0, -EINVAL },
                { "dev", 1, 256, 16, 1, 0 },
                { "dev", 1, 256, 16, 64, 0 },
                { "dev", 1, 256, 16, 65, -EINVAL },
                { "dev", 1, 128, 16, 64, 0 },
                { "dev", 1, 127, 16, 64, -EINVAL },
                { "dev", 1, 4096, 16, 255, -EINVAL },
                { NULL, 1, 256, 16, 16, 0 },
                { "65", 1, 256, 16, 16, -EINVAL },
                { "", 1, 256, 16, 16, -EINVAL },
                { "bad id", 1, 256, 16, 16, -EINVAL },
                { "bad/id", 1, 256, 16, 16, -EINVAL },
        };

        memset(id64, 'k', 64);
        id64[64] = '\0';
        memset(id65, 'k', 65);
        id65[65] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct vault_params v = { .profile = cases[i].profile, .n = cases[i].n,
                                          .m = cases[i].m, .p = cases[i].p, .epoch = 5 };
                const char *id = !cases[i].id ? id64 : strcmp(cases[i].id, "65") == 0 ? id65 : cases[i].id;
                size_t len = strlen(id);

                /* Filled in by hand: vault_params_set_id() would refuse the bad ids. */
                memcpy(v.device_id, id, len > SV_ID_MAX ? SV_ID_MAX + 1 : len);
                v.id_len = (uint8_t) len;
                ck_assert_msg(vault_params_validate(&v) == cases[i].want, "case %zu (id '%s' n=%u m=%u p=%u): %d",
                              i, id, v.n, v.m, v.p, vault_params_validate(&v));
        }
}
END_TEST

/* id_len must agree with the NUL-terminated device_id. */
START_TEST(test_params_id_len_mismatch) {
        struct vault_params v = unit_params("abcd", SV_PROFILE_HARDENED, 256, 16, 16, 0);

        ck_assert_int_eq(vault_params_validate(&v), 0);
        v.id_len = 3;
        ck_assert_int_eq(vault_params_validate(&v), -EINVAL);
        v.id_len = 5;
        ck_assert_int_eq(vault_params_validate(&v), -EINVAL);
        v.id_len = 0;
        v.device_id[0] = '\0';
        ck_assert_int_eq(vault_params_validate(&v), -EINVAL);
}
END_TEST

START_TEST(test_params_set_id) {
        struct vault_params v = { 0 }, before;
        char id64[65], id65[66];

        ck_assert_int_eq(vault_params_set_id(&v, "node-1"), 0);
        ck_assert_str_eq(v.device_id, "node-1");
        ck_assert_uint_eq(v.id_len, 6);
        memcpy(&before, &v, sizeof v);
        ck_assert_int_eq(vault_params_set_id(&v, ""), -EINVAL);
        ck_assert_int_eq(vault_params_set_id(&v, "no spaces"), -EINVAL);
        memset(id65, 'z', 65);
        id65[65] = '\0';
        ck_assert_int_eq(vault_params_set_id(&v, id65), -EINVAL);
        ck_assert_msg(memcmp(&v, &before, sizeof v) == 0, "failed set_id changed params");
        memset(id64, 'z', 64);
        id64[64] = '\0';
        ck_assert_int_eq(vault_params_set_id(&v, id64), 0);
        ck_assert_uint_eq(v.id_len, 64);
        ck_assert_str_eq(v.device_id, id64);
        /* A shorter id after a longer one is terminated properly. */
        ck_assert_int_eq(vault_params_set_id(&v, "ab"), 0);
        ck_assert_str_eq(v.device_id, "ab");
        ck_assert_uint_eq(v.id_len, 2);
}
END_TEST

START_TEST(test_profile_strings) {
        ck_assert_str_eq(vault_profile_to_string(SV_PROFILE_HARDENED), "hardened");
        ck_assert_str_eq(vault_profile_to_string(SV_PROFILE_PAPER), "paper");
        ck_assert_str_eq(vault_profile_to_string(0), "unknown");
        ck_assert_str_eq(vault_profile_to_string(3), "unknown");
        ck_assert_int_eq(vault_profile_from_string("hardened"), SV_PROFILE_HARDENED);
        ck_assert_int_eq(vault_profile_from_string("paper"), SV_PROFILE_PAPER);
        ck_assert_int_eq(vault_profile_from_string("Hardened"), -EINVAL);
        ck_assert_int_eq(vault_profile_from_string("paper "), -EINVAL);
        ck_assert_int_eq(vault_profile_from_string(""), -EINVAL);
        ck_assert_int_eq(vault_profile_from_string("weird"), -EINVAL);
}
END_TEST

/* ---- challenges ---------------------------------------------------------------------- */

START_TEST(test_challenge_validate) {
        static const struct {
                unsigned p;
                uint16_t idx[6];
                uint16_t n;
                uint8_t want_p;
                int want;
        } cases[] = {
                { 3, { 0, 1, 2 }, 8, 3, 0 },
                { 3, { 1, 5, 7 }, 8, 3, 0 },                    /* n-1 is in range */
                { 1, { 7 }, 8, 1, 0 },
                { 3, { 1, 5, 8 }, 8, 3, -EBADMSG },             /* index == n */
                { 3, { 1, 5, 65535 }, 8, 3, -EBADMSG },
                { 3, { 4096, 4097, 4098 }, 4096, 3, -EBADMSG },
                { 3, { 1, 1, 2 }, 8, 3, -EBADMSG },             /* duplicate */
                { 3, { 1, 2, 2 }, 8, 3, -EBADMSG },
                { 3, { 2, 1, 3 }, 8, 3, -EBADMSG },             /* unsorted */
                { 3, { 1, 3, 2 }, 8, 3, -EBADMSG },
                { 3, { 3, 2, 1 }, 8, 3, -EBADMSG },
                { 2, { 1, 2 }, 8, 3, -EBADMSG },                /* wrong p */
                { 4, { 1, 2, 3, 4 }, 8, 3, -EBADMSG },
                { 0, { 0 }, 8, 0, -EBADMSG },                   /* p = 0 is never valid */
                { 6, { 0, 1, 2, 3, 4, 5 }, 4096, 6, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct challenge c = unit_challenge(cases[i].p, cases[i].idx);

                ck_assert_msg(challenge_validate(&c, cases[i].n, cases[i].want_p) == cases[i].want,
                              "case %zu: %d", i, challenge_validate(&c, cases[i].n, cases[i].want_p));
        }
}
END_TEST

START_TEST(test_challenge_validate_limits) {
        struct challenge c = { .p = SV_P_MAX };

        for (unsigned i = 0; i < SV_P_MAX; i++)
                c.idx[i] = (uint16_t) (4095 - 63 + i);
        ck_assert_int_eq(challenge_validate(&c, 4096, SV_P_MAX), 0);
        c.p = SV_P_MAX + 1;
        ck_assert_int_eq(challenge_validate(&c, 4096, SV_P_MAX + 1), -EBADMSG);
}
END_TEST

START_TEST(test_challenge_disjoint) {
        static const struct {
                unsigned pa;
                uint16_t a[4];
                unsigned pb;
                uint16_t b[4];
                int want;
        } cases[] = {
                { 2, { 1, 3 }, 2, { 0, 2 }, 0 },
                { 2, { 1, 3 }, 2, { 4, 5 }, 0 },
                { 3, { 0, 2, 4 }, 3, { 1, 3, 5 }, 0 },
                { 2, { 1, 3 }, 2, { 1, 5 }, -EBADMSG },         /* first */
                { 2, { 1, 3 }, 2, { 0, 3 }, -EBADMSG },         /* last */
                { 3, { 0, 4, 9 }, 3, { 1, 4, 8 }, -EBADMSG },   /* middle */
                { 1, { 7 }, 4, { 0, 1, 2, 7 }, -EBADMSG },
                { 4, { 0, 1, 2, 7 }, 1, { 7 }, -EBADMSG },
                { 4, { 0, 1, 2, 3 }, 4, { 4, 5, 6, 7 }, 0 },
                { 4, { 4, 5, 6, 7 }, 4, { 0, 1, 2, 3 }, 0 },
                { 3, { 1, 2, 3 }, 3, { 1, 2, 3 }, -EBADMSG },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct challenge a = unit_challenge(cases[i].pa, cases[i].a);
                struct challenge b = unit_challenge(cases[i].pb, cases[i].b);

                ck_assert_msg(challenge_disjoint(&a, &b) == cases[i].want, "case %zu a,b", i);
                ck_assert_msg(challenge_disjoint(&b, &a) == cases[i].want, "case %zu b,a", i);
        }
}
END_TEST

/* Against a brute-force check on seeded random pairs. */
START_TEST(test_challenge_disjoint_random) {
        struct unit_rng g;

        unit_rng_init(&g, "challenge_disjoint_random");
        for (int round = 0; round < 2000; round++) {
                uint16_t n = (uint16_t) unit_rng_range(&g, 8, 80);
                uint8_t pa = (uint8_t) unit_rng_range(&g, 1, n / 2), pb = (uint8_t) unit_rng_range(&g, 1, n / 2);
                struct challenge a, b;
                bool share = false;

                if (pa > SV_P_MAX)
                        pa = SV_P_MAX;
                if (pb > SV_P_MAX)
                        pb = SV_P_MAX;
                ck_assert_int_eq(unit_rng_challenge(&g, n, pa, NULL, &a), 0);
                ck_assert_int_eq(unit_rng_challenge(&g, n, pb, NULL, &b), 0);
                for (unsigned i = 0; i < a.p; i++)
                        for (unsigned j = 0; j < b.p; j++)
                                share |= a.idx[i] == b.idx[j];
                unit_assert(challenge_disjoint(&a, &b) == (share ? -EBADMSG : 0), "round %d", round);
        }
}
END_TEST

START_TEST(test_challenge_generate_valid) {
        static const struct {
                uint16_t n;
                uint8_t p;
        } shapes[] = { { 8, 1 }, { 8, 4 }, { 9, 4 }, { 16, 8 }, { 256, 16 }, { 4096, 64 }, { 13, 6 }, { 128, 64 } };

        for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
                for (int round = 0; round < 200; round++) {
                        struct challenge c, avoid;

                        ck_assert_int_eq(challenge_generate(&c, shapes[s].n, shapes[s].p, NULL), 0);
                        ck_assert_msg(challenge_validate(&c, shapes[s].n, shapes[s].p) == 0, "shape %zu", s);
                        /* C2 must avoid C1 (2p <= n leaves room). */
                        ck_assert_int_eq(challenge_generate(&avoid, shapes[s].n, shapes[s].p, &c), 0);
                        ck_assert_msg(challenge_validate(&avoid, shapes[s].n, shapes[s].p) == 0, "shape %zu", s);
                        ck_assert_msg(challenge_disjoint(&avoid, &c) == 0, "shape %zu: overlaps avoid", s);
                }
}
END_TEST

/* Over many draws every index appears, both for C1 and for C2 given an avoid set. */
START_TEST(test_challenge_generate_coverage) {
        unsigned count[16] = { 0 }, count_avoid[16] = { 0 };
        static const uint16_t av[3] = { 0, 7, 15 };
        struct challenge avoid = unit_challenge(3, av);

        for (int round = 0; round < 2000; round++) {
                struct challenge c;

                ck_assert_int_eq(challenge_generate(&c, 16, 4, NULL), 0);
                for (unsigned i = 0; i < c.p; i++)
                        count[c.idx[i]]++;
                ck_assert_int_eq(challenge_generate(&c, 16, 4, &avoid), 0);
                for (unsigned i = 0; i < c.p; i++)
                        count_avoid[c.idx[i]]++;
        }
        for (unsigned k = 0; k < 16; k++) {
                bool avoided = k == 0 || k == 7 || k == 15;

                ck_assert_msg(count[k] > 0, "index %u never drawn", k);
                /* 8000 picks over 16 indices: 500 each, sd ~ 20; 350..650 is > 7 sd. */
                ck_assert_msg(count[k] > 350 && count[k] < 650, "index %u drawn %u times of 8000", k, count[k]);
                if (avoided)
                        ck_assert_msg(count_avoid[k] == 0, "avoided index %u drawn %u times", k, count_avoid[k]);
                else
                        ck_assert_msg(count_avoid[k] > 0, "index %u never drawn with avoid", k);
        }
}
END_TEST

/* p = 1 over n = 13 (not a power of two): rejection sampling keeps every index equally likely. */
START_TEST(test_challenge_generate_uniform) {
        unsigned count[13] = { 0 };

        for (int round = 0; round < 13000; round++) {
                struct challenge c;

                ck_assert_int_eq(challenge_generate(&c, 13, 1, NULL), 0);
                ck_assert_uint_lt(c.idx[0], 13);
                count[c.idx[0]]++;
        }
        for (unsigned k = 0; k < 13; k++)
                ck_assert_msg(count[k] > 800 && count[k] < 1200, "index %u: %u of 13000", k, count[k]);
}
END_TEST

START_TEST(test_challenge_generate_errors) {
        static const uint16_t idx12[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
        static const uint16_t idx13[13] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
        static const uint16_t dup[6] = { 1, 1, 1, 2, 2, 3 };
        static const uint16_t bad[2] = { 3, 16 };
        struct challenge avoid, c, before;

        /* Leaves exactly p free: those and only those. */
        avoid = unit_challenge(12, idx12);
        ck_assert_int_eq(challenge_generate(&c, 16, 4, &avoid), 0);
        ck_assert_uint_eq(c.p, 4);
        for (unsigned i = 0; i < 4; i++)
                ck_assert_uint_eq(c.idx[i], 12 + i);
        /* Fewer than p free. */
        avoid = unit_challenge(13, idx13);
        memset(&c, 0x77, sizeof c);
        memcpy(&before, &c, sizeof c);
        ck_assert_int_eq(challenge_generate(&c, 16, 4, &avoid), -EINVAL);
        ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "output written on failure");
        /* Duplicates in avoid count once: 16 - 3 = 13 free. */
        avoid = unit_challenge(6, dup);
        ck_assert_int_eq(challenge_generate(&c, 16, 13, &avoid), 0);
        ck_assert_int_eq(challenge_generate(&c, 16, 14, &avoid), -EINVAL);
        avoid = unit_challenge(2, bad);
        ck_assert_int_eq(challenge_generate(&c, 16, 4, &avoid), -EINVAL);
        ck_assert_int_eq(challenge_generate(&c, 7, 1, NULL), -EINVAL);
        ck_assert_int_eq(challenge_generate(&c, 4097, 1, NULL), -EINVAL);
        ck_assert_int_eq(challenge_generate(&c, 256, 0, NULL), -EINVAL);
        ck_assert_int_eq(challenge_generate(&c, 256, 65, NULL), -EINVAL);
        /* p == n: every index. */
        ck_assert_int_eq(challenge_generate(&c, 8, 8, NULL), 0);
        for (unsigned i = 0; i < 8; i++)
                ck_assert_uint_eq(c.idx[i], i);
}
END_TEST

/* ---- X(C) ---------------------------------------------------------------------------- */

/*
 * Key i of the test vault is the bytes i·m + b, b < m. Then X({1,3,6}) is, byte b,
 * (m+b) ^ (3m+b) ^ (6m+b): 16^48^96 = 0x40 for m = 16 and 32^96^192 = 0x80 for m = 32,
 * xor b (three times b is b): 0x40+b and 0x80+b.
 */
START_TEST(test_combine_by_hand) {
        static const uint16_t idx[3] = { 1, 3, 6 };
        static const uint16_t two[2] = { 0, 2 };
        static const uint16_t one[1] = { 7 };
        struct challenge c = unit_challenge(3, idx);
        uint8_t keys[8 * 32], out[SV_KEY_MAX + 1];

        for (unsigned m = 16; m <= 32; m += 16) {
                struct vault_params v = unit_params("x", SV_PROFILE_HARDENED, 8, (uint8_t) m, 3, 0);

                for (unsigned i = 0; i < 8 * m; i++)
                        keys[i] = (uint8_t) i;
                memset(out, 0xee, sizeof out);
                c = unit_challenge(3, idx);
                vault_combine(keys, &v, &c, out);
                for (unsigned b = 0; b < m; b++)
                        ck_assert_msg(out[b] == (m == 16 ? 0x40 : 0x80) + b, "m=%u byte %u: %02x", m, b, out[b]);
                ck_assert_msg(out[m] == 0xee, "wrote past m");

                c = unit_challenge(2, two);
                vault_combine(keys, &v, &c, out);
                for (unsigned b = 0; b < m; b++)
                        ck_assert_uint_eq(out[b], 2 * m);       /* b ^ (2m + b) = 2m */

                c = unit_challenge(1, one);
                vault_combine(keys, &v, &c, out);
                for (unsigned b = 0; b < m; b++)
                        ck_assert_uint_eq(out[b], (uint8_t) (7 * m + b));
        }
        /* Single-bit keys: X is the OR of the chosen bits. */
        {
                struct vault_params v = unit_params("x", SV_PROFILE_PAPER, 8, 16, 4, 0);
                static const uint16_t four[4] = { 0, 2, 5, 7 };

                for (unsigned i = 0; i < 8; i++)
                        memset(keys + 16 * i, 1 << i, 16);
                c = unit_challenge(4, four);
                vault_combine(keys, &v, &c, out);
                for (unsigned b = 0; b < 16; b++)
                        ck_assert_uint_eq(out[b], 0xa5);
        }
}
END_TEST

/* ---- updates ------------------------------------------------------------------------- */

static void fill_random(struct unit_rng *g, uint8_t *p, size_t len) {
        unit_rng_bytes(g, p, len);
}

/* KBKDF counter mode written out from SP 800-108 and protocol §1, on HMAC alone. */
static void reference_kbkdf(const uint8_t key[32], const char *label, const uint8_t *ctx, size_t ctx_len,
                            uint8_t *out, size_t out_len) {
        uint8_t msg[4 + 16 + 1 + SV_ID_MAX + 8 + 4], block[32];
        size_t label_len = strlen(label), msg_len = 0;
        uint32_t bits = (uint32_t) (out_len * 8);

        ck_assert_uint_le(label_len, 16);
        msg_len = 4;
        memcpy(msg + msg_len, label, label_len), msg_len += label_len;
        msg[msg_len++] = 0x00;
        memcpy(msg + msg_len, ctx, ctx_len), msg_len += ctx_len;
        msg[msg_len++] = (uint8_t) (bits >> 24);
        msg[msg_len++] = (uint8_t) (bits >> 16);
        msg[msg_len++] = (uint8_t) (bits >> 8);
        msg[msg_len++] = (uint8_t) bits;
        for (uint32_t i = 1, off = 0; off < out_len; i++, off += 32) {
                msg[0] = (uint8_t) (i >> 24);
                msg[1] = (uint8_t) (i >> 16);
                msg[2] = (uint8_t) (i >> 8);
                msg[3] = (uint8_t) i;
                ck_assert_int_eq(crypto_hmac_sha256(key, 32, msg, msg_len, block), 0);
                memcpy(out + off, block, out_len - off < 32 ? out_len - off : 32);
        }
}

/* §5 hardened, written out: PRK = HMAC-SHA256(U, V); V' = KBKDF(PRK, "sv1 vault", id || u64(e+1)). */
static void reference_hardened(const uint8_t *keys, const struct vault_params *v, const uint8_t u[32], uint8_t *out) {
        uint8_t prk[32], ctx[SV_ID_MAX + 8];

        ck_assert_int_eq(crypto_hmac_sha256(u, 32, keys, vault_size(v), prk), 0);
        memcpy(ctx, v->device_id, v->id_len);
        be64_put(ctx + v->id_len, v->epoch + 1);
        reference_kbkdf(prk, "sv1 vault", ctx, v->id_len + 8u, out, vault_size(v));
}

/* §5 paper, written out: P_i' = P_i xor (h xor u64(i) in the last 8 bytes). */
static void reference_paper(const uint8_t *keys, const struct vault_params *v, const uint8_t *ts, size_t ts_len,
                            uint8_t *out) {
        uint8_t h[64];
        size_t size = vault_size(v);

        ck_assert_int_eq(crypto_hmac_sha512(ts, ts_len, keys, size, h), 0);
        for (size_t off = 0; off < size; off++) {
                uint64_t i = off / 64;
                unsigned j = off % 64;
                uint8_t pad = h[j];

                if (j >= 56)
                        pad ^= (uint8_t) (i >> (8 * (63 - j)));
                out[off] = keys[off] ^ pad;
        }
}

START_TEST(test_update_hardened) {
        static const struct {
                const char *id;
                uint16_t n;
                uint8_t m;
                uint64_t epoch;
        } cases[] = {
                { "a", 8, 16, 0 },
                { "sensor-0042", 256, 16, 7 },
                { "m32", 13, 32, UINT64_MAX - 1 },
                { "big", 4096, 32, 1 },
        };
        struct unit_rng g;

        unit_rng_init(&g, "update_hardened");
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct vault_params v = unit_params(cases[i].id, SV_PROFILE_HARDENED, cases[i].n, cases[i].m, 1,
                                                    cases[i].epoch);
                size_t size = vault_size(&v);
                uint8_t *keys = vault_new(size), *a = vault_new(size), *b = vault_new(size), *want = vault_new(size);
                uint8_t u[32], u2[32];

                fill_random(&g, keys, size);
                fill_random(&g, u, sizeof u);
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, a), 0);
                reference_hardened(keys, &v, u, want);
                unit_assert(memcmp(a, want, size) == 0, "case %zu: differs from §5", i);
                /* Deterministic. */
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, b), 0);
                ck_assert_msg(memcmp(a, b, size) == 0, "case %zu: not deterministic", i);
                ck_assert_msg(memcmp(a, keys, size) != 0, "case %zu: unchanged", i);
                /* Aliasing: in place gives the same result. */
                memcpy(b, keys, size);
                ck_assert_int_eq(vault_update_hardened(b, &v, u, b), 0);
                ck_assert_msg(memcmp(a, b, size) == 0, "case %zu: in-place result differs", i);
                /* Every input matters: U, epoch, id, and each key. */
                memcpy(u2, u, sizeof u);
                u2[31] ^= 1;
                ck_assert_int_eq(vault_update_hardened(keys, &v, u2, b), 0);
                ck_assert_msg(memcmp(a, b, size) != 0, "case %zu: U ignored", i);
                v.epoch ^= 2;
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, b), 0);
                ck_assert_msg(memcmp(a, b, size) != 0, "case %zu: epoch ignored", i);
                v.epoch ^= 2;
                v.device_id[0] ^= 0x20;
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, b), 0);
                ck_assert_msg(memcmp(a, b, size) != 0, "case %zu: id ignored", i);
                v.device_id[0] ^= 0x20;
                keys[size - 1] ^= 0x80;
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, b), 0);
                keys[size - 1] ^= 0x80;
                /* One bit of the old vault changes every key of the new one. */
                for (size_t k = 0; k < v.n; k++)
                        ck_assert_msg(memcmp(a + k * v.m, b + k * v.m, v.m) != 0, "case %zu: key %zu unchanged", i, k);
                free(keys);
                free(a);
                free(b);
                free(want);
        }
}
END_TEST

START_TEST(test_update_paper) {
        static const struct {
                uint16_t n;
                uint8_t m;
        } cases[] = {
                { 8, 16 },      /* 128 bytes: two whole partitions */
                { 9, 16 },      /* a partial last partition */
                { 13, 32 },
                { 1024, 32 },   /* 512 partitions: the index needs two bytes */
        };
        struct unit_rng g;

        unit_rng_init(&g, "update_paper");
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct vault_params v = unit_params("paper-dev", SV_PROFILE_PAPER, cases[i].n, cases[i].m, 1, 3);
                size_t size = vault_size(&v);
                uint8_t *keys = vault_new(size), *a = vault_new(size), *b = vault_new(size), *want = vault_new(size);
                uint8_t ts[200];

                fill_random(&g, keys, size);
                fill_random(&g, ts, sizeof ts);
                ck_assert_int_eq(vault_update_paper(keys, &v, ts, sizeof ts, a), 0);
                reference_paper(keys, &v, ts, sizeof ts, want);
                unit_assert(memcmp(a, want, size) == 0, "case %zu: differs from §5", i);
                ck_assert_int_eq(vault_update_paper(keys, &v, ts, sizeof ts, b), 0);
                ck_assert_msg(memcmp(a, b, size) == 0, "case %zu: not deterministic", i);
                memcpy(b, keys, size);
                ck_assert_int_eq(vault_update_paper(b, &v, ts, sizeof ts, b), 0);
                ck_assert_msg(memcmp(a, b, size) == 0, "case %zu: in-place result differs", i);
                ts[0] ^= 1;
                ck_assert_int_eq(vault_update_paper(keys, &v, ts, sizeof ts, b), 0);
                ck_assert_msg(memcmp(a, b, size) != 0, "case %zu: transcript ignored", i);
                free(keys);
                free(a);
                free(b);
                free(want);
        }
}
END_TEST

START_TEST(test_update_epoch_overflow) {
        struct vault_params v = unit_params("last", SV_PROFILE_HARDENED, 8, 16, 1, UINT64_MAX);
        uint8_t keys[128], out[128], before[128], u[32] = { 1 };

        memset(keys, 0x11, sizeof keys);
        memset(out, 0x22, sizeof out);
        memcpy(before, out, sizeof out);
        ck_assert_int_eq(vault_update_hardened(keys, &v, u, out), -EOVERFLOW);
        ck_assert_msg(memcmp(out, before, sizeof out) == 0, "hardened wrote output");
        v.profile = SV_PROFILE_PAPER;
        ck_assert_int_eq(vault_update_paper(keys, &v, u, sizeof u, out), -EOVERFLOW);
        ck_assert_msg(memcmp(out, before, sizeof out) == 0, "paper wrote output");
        v.epoch = UINT64_MAX - 1;
        ck_assert_int_eq(vault_update_paper(keys, &v, u, sizeof u, out), 0);
        v.profile = SV_PROFILE_HARDENED;
        ck_assert_int_eq(vault_update_hardened(keys, &v, u, out), 0);
}
END_TEST

/*
 * The paper's update XORs the same 64-byte pad into every partition, except that the
 * partition index i is XORed into the pad's last 8 bytes. So for partitions a and b and
 * any offset j, V'[64a+j] ^ V'[64b+j] = V[64a+j] ^ V[64b+j] for j < 56, and for j >= 56
 * it changes by byte (j-56) of u64(a) ^ u64(b), which is public. An observer who learns
 * such XORs of the vault once learns them for every later generation.
 */
START_TEST(test_paper_weakness) {
        static const struct {
                uint16_t n;
                uint8_t m;
                size_t a, b;    /* partitions */
        } cases[] = {
                { 8, 16, 0, 1 },
                { 4, 32, 0, 1 },
                { 9, 16, 0, 1 },
                { 1024, 32, 0, 511 },
                { 1024, 32, 255, 256 },
                { 1024, 32, 3, 300 },
                { 4096, 16, 17, 1023 },
        };
        struct unit_rng g;

        unit_rng_init(&g, "paper_weakness");
        for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
                struct vault_params v = unit_params("weak", SV_PROFILE_PAPER, SV_N_MIN, 16, 1, 0);
                size_t size, a = cases[c].a * 64, b = cases[c].b * 64;
                uint8_t *keys, *next, *hard, ts[100], u[32], ia[8], ib[8];
                unsigned survived = 0;

                /* n = 4 with m = 32 is below the protocol's minimum but is only vault math here. */
                v.n = cases[c].n;
                v.m = cases[c].m;
                size = vault_size(&v);
                ck_assert_uint_ge(size, b + 64);
                keys = vault_new(size);
                next = vault_new(size);
                hard = vault_new(size);
                fill_random(&g, keys, size);
                fill_random(&g, ts, sizeof ts);
                fill_random(&g, u, sizeof u);
                be64_put(ia, cases[c].a);
                be64_put(ib, cases[c].b);

                ck_assert_int_eq(vault_update_paper(keys, &v, ts, sizeof ts, next), 0);
                for (unsigned j = 0; j < 64; j++) {
                        uint8_t before = keys[a + j] ^ keys[b + j];
                        uint8_t after = next[a + j] ^ next[b + j];
                        uint8_t delta = j < 56 ? 0 : ia[j - 56] ^ ib[j - 56];

                        unit_assert(after == (uint8_t) (before ^ delta),
                                    "case %zu offset %u: %02x -> %02x, expected change %02x",
                                    c, j, before, after, delta);
                }
                /* Chained: the relation survives any number of generations. */
                for (int gen = 0; gen < 3; gen++) {
                        ts[0]++;
                        ck_assert_int_eq(vault_update_paper(next, &v, ts, sizeof ts, next), 0);
                }
                for (unsigned j = 0; j < 56; j++)
                        unit_assert((keys[a + j] ^ keys[b + j]) == (next[a + j] ^ next[b + j]),
                                    "case %zu offset %u: lost after 4 generations", c, j);

                /* The hardened update keeps none of it: survivors only by chance (1/256 each). */
                v.profile = SV_PROFILE_HARDENED;
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, hard), 0);
                for (unsigned j = 0; j < 64; j++)
                        survived += (keys[a + j] ^ keys[b + j]) == (hard[a + j] ^ hard[b + j]);
                unit_assert(survived < 8, "case %zu: hardened kept %u of 64 XORs", c, survived);
                free(keys);
                free(next);
                free(hard);
        }
}
END_TEST

static Suite *vault_suite(void) {
        Suite *s = suite_create("vault");
        TCase *tc = tcase_create("params");

        tcase_add_test(tc, test_device_id_valid);
        tcase_add_test(tc, test_params_validate);
        tcase_add_test(tc, test_params_id_len_mismatch);
        tcase_add_test(tc, test_params_set_id);
        tcase_add_test(tc, test_profile_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("challenge");
        tcase_add_test(tc, test_challenge_validate);
        tcase_add_test(tc, test_challenge_validate_limits);
        tcase_add_test(tc, test_challenge_disjoint);
        tcase_add_test(tc, test_challenge_disjoint_random);
        tcase_add_test(tc, test_challenge_generate_valid);
        tcase_add_test(tc, test_challenge_generate_coverage);
        tcase_add_test(tc, test_challenge_generate_uniform);
        tcase_add_test(tc, test_challenge_generate_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("combine");
        tcase_add_test(tc, test_combine_by_hand);
        suite_add_tcase(s, tc);

        tc = tcase_create("update");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_update_hardened);
        tcase_add_test(tc, test_update_paper);
        tcase_add_test(tc, test_update_epoch_overflow);
        tcase_add_test(tc, test_paper_weakness);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(vault_suite());
}
