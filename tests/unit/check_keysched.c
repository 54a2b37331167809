/* SPDX-License-Identifier: MIT */

/* common/keysched: the key table of protocol §4 for both profiles, and Seal/Open. */

#include <errno.h>
#include <string.h>

#include <openssl/rand.h>

#include "crypto.h"
#include "keysched.h"
#include "unit.h"

START_TEST(test_k3) {
        uint8_t th2[32], x1[32], out[32], want[32];
        size_t len = 0;
        struct unit_rng g;

        unit_rng_init(&g, "k3");
        unit_rng_bytes(&g, th2, sizeof th2);
        unit_rng_bytes(&g, x1, sizeof x1);
        for (uint8_t m = 16; m <= 32; m += 16) {
                /* hardened: HKDF(TH2, X(C1), "sv1 k3", 32) */
                ck_assert_int_eq(keysched_k3(SV_PROFILE_HARDENED, th2, x1, m, NULL, 0, out, &len), 0);
                ck_assert_uint_eq(len, 32);
                ck_assert_int_eq(crypto_hkdf(th2, 32, x1, m, "sv1 k3", want, 32), 0);
                unit_assert(memcmp(out, want, 32) == 0, "hardened k3 m=%u", m);
                /* paper: X(C1) itself, m bytes */
                memset(out, 0, sizeof out);
                ck_assert_int_eq(keysched_k3(SV_PROFILE_PAPER, th2, x1, m, NULL, 0, out, &len), 0);
                ck_assert_uint_eq(len, m);
                ck_assert(memcmp(out, x1, m) == 0);
        }
        len = 99;
        ck_assert_int_eq(keysched_k3(0, th2, x1, 16, NULL, 0, out, &len), -EINVAL);
        ck_assert_int_eq(keysched_k3(3, th2, x1, 16, NULL, 0, out, &len), -EINVAL);
        ck_assert_uint_eq(len, 99);
}
END_TEST

START_TEST(test_k4) {
        uint8_t th3[32], x2[32], t1[32], out[32], want[32], ikm[64];
        size_t len = 0;
        struct unit_rng g;

        unit_rng_init(&g, "k4");
        unit_rng_bytes(&g, th3, sizeof th3);
        unit_rng_bytes(&g, x2, sizeof x2);
        unit_rng_bytes(&g, t1, sizeof t1);
        for (uint8_t m = 16; m <= 32; m += 16) {
                /* hardened: HKDF(TH3, X(C2) || t1, "sv1 k4", 32) */
                ck_assert_int_eq(keysched_k4(SV_PROFILE_HARDENED, th3, x2, m, t1, NULL, 0, out, &len), 0);
                ck_assert_uint_eq(len, 32);
                memcpy(ikm, x2, m);
                memcpy(ikm + m, t1, 32);
                ck_assert_int_eq(crypto_hkdf(th3, 32, ikm, m + 32u, "sv1 k4", want, 32), 0);
                unit_assert(memcmp(out, want, 32) == 0, "hardened k4 m=%u", m);
                /* paper: X(C2) xor t1[0..m) */
                ck_assert_int_eq(keysched_k4(SV_PROFILE_PAPER, th3, x2, m, t1, NULL, 0, out, &len), 0);
                ck_assert_uint_eq(len, m);
                for (unsigned i = 0; i < m; i++)
                        ck_assert_uint_eq(out[i], x2[i] ^ t1[i]);
        }
        ck_assert_int_eq(keysched_k4(7, th3, x2, 16, t1, NULL, 0, out, &len), -EINVAL);
}
END_TEST

START_TEST(test_finish) {
        uint8_t th4[32], t1[32], t2[32], t[32], s[32], want[32];
        struct keysched_final f;
        struct unit_rng g;

        unit_rng_init(&g, "finish");
        unit_rng_bytes(&g, th4, sizeof th4);
        unit_rng_bytes(&g, t1, sizeof t1);
        unit_rng_bytes(&g, t2, sizeof t2);
        for (int i = 0; i < 32; i++)
                t[i] = t1[i] ^ t2[i];
        ck_assert_int_eq(crypto_hkdf_extract(th4, 32, t, 32, s), 0);

        ck_assert_int_eq(keysched_finish(SV_PROFILE_HARDENED, th4, t1, t2, NULL, 0, &f), 0);
        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 k5", want, 32), 0);
        unit_assert(memcmp(f.k5, want, 32) == 0, "hardened k5");
        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 session", want, 32), 0);
        unit_assert(memcmp(f.session_key, want, 32) == 0, "hardened session key");
        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 update", want, 32), 0);
        unit_assert(memcmp(f.u, want, 32) == 0, "hardened U");
        ck_assert(memcmp(f.session_key, t, 32) != 0);

        ck_assert_int_eq(keysched_finish(SV_PROFILE_PAPER, th4, t1, t2, NULL, 0, &f), 0);
        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 k5", want, 32), 0);
        unit_assert(memcmp(f.k5, want, 32) == 0, "paper k5");
        unit_assert(memcmp(f.session_key, t, 32) == 0, "paper session key is t1 xor t2");

        /* Symmetric in t1, t2 only through t: swapping them changes nothing. */
        {
                struct keysched_final f2;

                ck_assert_int_eq(keysched_finish(SV_PROFILE_HARDENED, th4, t1, t2, NULL, 0, &f), 0);
                ck_assert_int_eq(keysched_finish(SV_PROFILE_HARDENED, th4, t2, t1, NULL, 0, &f2), 0);
                ck_assert(memcmp(&f, &f2, sizeof f) == 0);
                th4[0] ^= 1;
                ck_assert_int_eq(keysched_finish(SV_PROFILE_HARDENED, th4, t1, t2, NULL, 0, &f2), 0);
                ck_assert(memcmp(f.k5, f2.k5, 32) != 0);
                ck_assert(memcmp(f.session_key, f2.session_key, 32) != 0);
                ck_assert(memcmp(f.u, f2.u, 32) != 0);
        }
        memset(&f, 0x5c, sizeof f);
        ck_assert_int_eq(keysched_finish(0, th4, t1, t2, NULL, 0, &f), -EINVAL);
        for (size_t i = 0; i < sizeof f; i++)
                ck_assert_uint_eq(((uint8_t *) &f)[i], 0x5c);
        keysched_final_wipe(&f);
        for (size_t i = 0; i < sizeof f; i++)
                ck_assert_uint_eq(((uint8_t *) &f)[i], 0);
}
END_TEST

/* Seal(K, TH, pt): AES-GCM, nonce TH[0..12), AAD all of TH; 16- and 32-byte keys. */
START_TEST(test_seal_open) {
        uint8_t key[32], th[32], pt[100], ct[116], back[100];
        struct unit_rng g;

        unit_rng_init(&g, "seal");
        unit_rng_bytes(&g, key, sizeof key);
        unit_rng_bytes(&g, th, sizeof th);
        unit_rng_bytes(&g, pt, sizeof pt);
        for (size_t klen = 16; klen <= 32; klen += 16) {
                ck_assert_int_eq(keysched_seal(key, klen, th, pt, sizeof pt, ct), 0);
                ck_assert(memcmp(ct, pt, sizeof pt) != 0);
                ck_assert_int_eq(keysched_open(key, klen, th, ct, sizeof ct, back), 0);
                ck_assert(memcmp(back, pt, sizeof pt) == 0);
                /* Same as crypto_aead_seal with those parameters. */
                {
                        uint8_t ct2[116];

                        ck_assert_int_eq(crypto_aead_seal(key, klen, th, th, 32, pt, sizeof pt, ct2), 0);
                        ck_assert(memcmp(ct, ct2, sizeof ct) == 0);
                }
                /* Every byte of TH is bound, including the 20 past the nonce. */
                for (int i = 0; i < 32; i++) {
                        th[i] ^= 0x01;
                        ck_assert_msg(keysched_open(key, klen, th, ct, sizeof ct, back) == -EBADMSG, "th byte %d", i);
                        th[i] ^= 0x01;
                }
                ct[sizeof ct - 1] ^= 0x80;
                ck_assert_int_eq(keysched_open(key, klen, th, ct, sizeof ct, back), -EBADMSG);
                ct[sizeof ct - 1] ^= 0x80;
                ct[0] ^= 0x80;
                ck_assert_int_eq(keysched_open(key, klen, th, ct, sizeof ct, back), -EBADMSG);
                ct[0] ^= 0x80;
                /* The tag alone (M5). */
                ck_assert_int_eq(keysched_seal(key, klen, th, NULL, 0, ct), 0);
                ck_assert_int_eq(keysched_open(key, klen, th, ct, 16, NULL), 0);
                ct[3] ^= 4;
                ck_assert_int_eq(keysched_open(key, klen, th, ct, 16, NULL), -EBADMSG);
                ck_assert_int_eq(keysched_open(key, klen, th, ct, 15, NULL), -EBADMSG);
        }
        ck_assert_int_eq(keysched_seal(key, 24, th, pt, sizeof pt, ct), -EINVAL);
}
END_TEST

START_TEST(test_kbkdf_matches_openssl) {
        static const size_t lengths[] = { 1, 16, 31, 32, 33, 64, 100, 4096, 65536, 131072 };
        static uint8_t ours[131072], ref[131072];
        uint8_t key[32], context[72];

        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
                size_t context_len = 8 + i * 6;

                ck_assert_int_eq(RAND_bytes(key, sizeof key), 1);
                ck_assert_int_eq(RAND_bytes(context, (int) context_len), 1);
                ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", context, context_len, ours, lengths[i]), 0);
                unit_kbkdf_openssl(key, sizeof key, "sv1 vault", context, context_len, ref, lengths[i]);
                ck_assert_msg(memcmp(ours, ref, lengths[i]) == 0, "KBKDF differs from OpenSSL's at %zu bytes", lengths[i]);
        }
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", context, 8, ours, 0), -EINVAL);
}
END_TEST

static Suite *keysched_suite(void) {
        Suite *s = suite_create("keysched");
        TCase *tc = tcase_create("keys");

        tcase_add_test(tc, test_k3);
        tcase_add_test(tc, test_k4);
        tcase_add_test(tc, test_finish);
        tcase_add_test(tc, test_seal_open);
        tcase_add_test(tc, test_kbkdf_matches_openssl);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(keysched_suite());
}
