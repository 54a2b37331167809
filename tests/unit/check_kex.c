/* SPDX-License-Identifier: MIT */

/* common/kex: the X25519 key share of protocol §10: known answers, small-order shares, wipes. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "kex.h"
#include "unit.h"
#include "unit-kat.h"

/* One case of extensions.txt for test_vectors; userdata counts the x25519 cases. */
static int kex_vector(const struct kat_case *c, void *userdata) {
        unsigned *x25519 = userdata;
        const char *kex = kat_get(c, "kex"), *name = kat_get(c, "name");
        struct kat_bytes e_dev, e_srv, share_dev, share_srv, z, m1, m2;
        struct kex dev, srv;
        uint8_t e[SV_X25519_LEN], zd[SV_X25519_LEN], zs[SV_X25519_LEN];

        ck_assert_ptr_nonnull(kex);
        if (strcmp(kex, "x25519") != 0) {
                ck_assert_str_eq(kex, "none");
                ck_assert_ptr_null(kat_get(c, "e_dev"));
                return 0;
        }
        (*x25519)++;
        e_dev = unit_kat_bytes(c, "e_dev");
        e_srv = unit_kat_bytes(c, "e_srv");
        share_dev = unit_kat_bytes(c, "share_dev");
        share_srv = unit_kat_bytes(c, "share_srv");
        z = unit_kat_bytes(c, "z");
        m1 = unit_kat_bytes(c, "m1");
        m2 = unit_kat_bytes(c, "m2");
        ck_assert_uint_eq(e_dev.len, 32);
        ck_assert_uint_eq(e_srv.len, 32);
        ck_assert_uint_eq(share_dev.len, 32);
        ck_assert_uint_eq(share_srv.len, 32);
        ck_assert_uint_eq(z.len, 32);
        /* §10: the shares close M1 and M2. */
        ck_assert(m1.len > 32 && memcmp(m1.data + m1.len - 32, share_dev.data, 32) == 0);
        ck_assert(m2.len > 32 && memcmp(m2.data + m2.len - 32, share_srv.data, 32) == 0);

        memcpy(e, e_dev.data, sizeof e);
        ck_assert_int_eq(kex_start(&dev, e), 0);
        ck_assert(unit_is_zero(e, sizeof e));
        unit_assert(memcmp(dev.share, share_dev.data, 32) == 0, "%s: share_dev %s", name,
                    unit_hex(dev.share, 32));
        memcpy(e, e_srv.data, sizeof e);
        ck_assert_int_eq(kex_start(&srv, e), 0);
        ck_assert(unit_is_zero(e, sizeof e));
        unit_assert(memcmp(srv.share, share_srv.data, 32) == 0, "%s: share_srv %s", name,
                    unit_hex(srv.share, 32));

        ck_assert_int_eq(kex_finish(&dev, share_srv.data, zd), 0);
        ck_assert_int_eq(kex_finish(&srv, share_dev.data, zs), 0);
        unit_assert(memcmp(zd, z.data, 32) == 0, "%s: device z %s", name, unit_hex(zd, 32));
        unit_assert(memcmp(zs, z.data, 32) == 0, "%s: server z %s", name, unit_hex(zs, 32));
        ck_assert(unit_is_zero(&dev, sizeof dev));
        ck_assert(unit_is_zero(&srv, sizeof srv));

        free(e_dev.data);
        free(e_srv.data);
        free(share_dev.data);
        free(share_srv.data);
        free(z.data);
        free(m1.data);
        free(m2.data);
        return 0;
}

/* Both sides of every x25519 case of extensions.txt: shares from the scalars as drawn, Z both ways. */
START_TEST(test_vectors) {
        unsigned x25519 = 0;

        ck_assert_int_ge(kat_each("extensions.txt", kex_vector, &x25519), 0);
        /* The file holds two x25519 cases: an empty or unreadable file must not pass. */
        ck_assert_uint_ge(x25519, 2);
}
END_TEST

START_TEST(test_small_order_refused) {
        uint8_t pts[UNIT_SMALL_ORDER_COUNT][32];
        struct unit_rng g;

        unit_small_order_points(pts);
        unit_rng_init(&g, "small-order");
        for (int i = 0; i < UNIT_SMALL_ORDER_COUNT; i++) {
                /* Several scalars: a clamped scalar is a multiple of 8, so each gives Z = 0. */
                for (int round = 0; round < 4; round++) {
                        struct kex k;
                        uint8_t e[32], z[32];

                        unit_rng_bytes(&g, e, sizeof e);
                        ck_assert_int_eq(kex_start(&k, e), 0);
                        memset(z, 0xa5, sizeof z);
                        ERR_clear_error();
                        unit_assert(kex_finish(&k, pts[i], z) == -EKEYREJECTED, "share %s accepted",
                                    unit_hex(pts[i], 32));
                        /* a refusal is an outcome: no OpenSSL error left for the caller's next call */
                        ck_assert_uint_eq(ERR_peek_error(), 0);
                        /* Nothing written, the scalar gone. */
                        for (size_t j = 0; j < sizeof z; j++)
                                ck_assert_uint_eq(z[j], 0xa5);
                        ck_assert(unit_is_zero(&k, sizeof k));
                        ck_assert_int_eq(kex_finish(&k, pts[i], z), -EINVAL);
                }
                ck_assert(kex_share_is_small_order(pts[i]));
        }
}
END_TEST

/* Shares next to the small-order ones, the base point and random shares give a non-zero Z. */
START_TEST(test_ordinary_shares_accepted) {
        uint8_t pts[8][32];
        struct unit_rng g;

        unit_rng_init(&g, "ordinary");
        unit_u_decimal("2", pts[0]);
        unit_u_decimal("9", pts[1]);
        unit_u_p_plus(-2, pts[2]);
        unit_u_p_plus(2, pts[3]);
        for (int i = 4; i < 8; i++)
                unit_rng_bytes(&g, pts[i], 32);
        for (int i = 0; i < 8; i++) {
                struct kex k;
                uint8_t e[32], z[32];

                if (i >= 4 && kex_share_is_small_order(pts[i]))
                        continue;       /* 14 in 2^256 */
                unit_rng_bytes(&g, e, sizeof e);
                ck_assert_int_eq(kex_start(&k, e), 0);
                unit_assert(kex_finish(&k, pts[i], z) == 0, "share %s refused", unit_hex(pts[i], 32));
                ck_assert(!unit_is_zero(z, sizeof z));
                ck_assert(!kex_share_is_small_order(pts[i]));
        }
}
END_TEST

/* Random pairs agree; the scalar is used as drawn and clamped by X25519 (RFC 7748 §5). */
START_TEST(test_agree_and_clamp) {
        struct unit_rng g;

        unit_rng_init(&g, "agree");
        for (int round = 0; round < 16; round++) {
                uint8_t ea[32], eb[32], ea2[32], za[32], zb[32], sa[32];
                struct kex a, b, a2;

                unit_rng_bytes(&g, ea, sizeof ea);
                unit_rng_bytes(&g, eb, sizeof eb);
                /* The same scalar after clamping: low 3 bits, bit 255 and bit 254 are fixed. */
                memcpy(ea2, ea, sizeof ea2);
                ea2[0] ^= 0x07;
                ea2[31] ^= 0x80;
                ea2[31] &= 0x7f;
                ea2[31] |= 0x40;
                ck_assert_int_eq(kex_start(&a, ea), 0);
                ck_assert_int_eq(kex_start(&b, eb), 0);
                ck_assert_int_eq(kex_start(&a2, ea2), 0);
                ck_assert(memcmp(a.share, a2.share, 32) == 0);
                ck_assert(memcmp(a.share, b.share, 32) != 0);
                kex_wipe(&a2);
                ck_assert(unit_is_zero(&a2, sizeof a2));
                /* kex_finish() wipes all of the kex, the share with it */
                memcpy(sa, a.share, sizeof sa);
                ck_assert_int_eq(kex_finish(&a, b.share, za), 0);
                ck_assert(unit_is_zero(a.share, sizeof a.share));
                ck_assert_int_eq(kex_finish(&b, sa, zb), 0);
                ck_assert(memcmp(za, zb, 32) == 0);
                ck_assert(!unit_is_zero(za, sizeof za));
        }
}
END_TEST

/* Who wipes what (kex.h): the caller's scalar at start, the kex at finish on every path. */
START_TEST(test_wipes) {
        struct kex k, never = { 0 };
        uint8_t e[32], peer[32], z[32];
        struct unit_rng g;

        unit_rng_init(&g, "wipes");
        unit_rng_bytes(&g, peer, sizeof peer);
        peer[31] &= 0x7f;

        /* finish without start, twice: refused, nothing written */
        memset(z, 0x5a, sizeof z);
        ck_assert_int_eq(kex_finish(&never, peer, z), -EINVAL);
        ck_assert_uint_eq(z[0], 0x5a);

        unit_rng_bytes(&g, e, sizeof e);
        ck_assert_int_eq(kex_start(&k, e), 0);
        ck_assert(unit_is_zero(e, sizeof e));
        ck_assert(k.armed);
        ck_assert(!unit_is_zero(k.e, sizeof k.e));
        ck_assert_int_eq(kex_finish(&k, peer, z), 0);
        ck_assert(unit_is_zero(&k, sizeof k));
        ck_assert_int_eq(kex_finish(&k, peer, z), -EINVAL);

        /* a handshake that ends before finish */
        unit_rng_bytes(&g, e, sizeof e);
        ck_assert_int_eq(kex_start(&k, e), 0);
        kex_wipe(&k);
        ck_assert(unit_is_zero(&k, sizeof k));
        ck_assert_int_eq(kex_finish(&k, peer, z), -EINVAL);
}
END_TEST

static Suite *kex_suite(void) {
        Suite *s = suite_create("kex");
        TCase *tc = tcase_create("x25519");

        tcase_add_test(tc, test_vectors);
        tcase_add_test(tc, test_small_order_refused);
        tcase_add_test(tc, test_ordinary_shares_accepted);
        tcase_add_test(tc, test_agree_and_clamp);
        tcase_add_test(tc, test_wipes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(kex_suite());
}
