/* SPDX-License-Identifier: MIT */

/*
 * common/hmac: HMAC-SHA256, HKDF and KBKDF from precomputed keyed SHA-256 states, held
 * byte for byte equal to OpenSSL's own EVP_MAC "HMAC", EVP_KDF "HKDF" and EVP_KDF "KBKDF"
 * (counter mode, configured as protocol §1 says): the hardened vault update at every vault
 * size the profile table allows (every n·m, both m), and the edges of every length — key,
 * message, output, label and context, the KBKDF counter and L across their byte boundaries.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "buf.h"
#include "crypto.h"
#include "profile.h"
#include "vault.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the references: OpenSSL's providers ----------------------------------------------- */

static void ref_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[32]) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t got = 0;

        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(EVP_MAC_init(ctx, key, key_len, params), 1);
        ck_assert_int_eq(EVP_MAC_update(ctx, msg, msg_len), 1);
        ck_assert_int_eq(EVP_MAC_final(ctx, out, &got, 32), 1);
        ck_assert_uint_eq(got, 32);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
}

/* mode: EVP_KDF_HKDF_MODE_*; salt and info NULL for none, as crypto.h takes them. */
static void ref_hkdf(int mode, const void *salt, size_t salt_len, const void *key, size_t key_len, const char *info,
                     uint8_t *out, size_t out_len) {
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[6], *p = params;

        ck_assert_ptr_nonnull(ctx);
        *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) key, key_len);
        if (salt)
                *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
        if (info)
                *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, strlen(info));
        *p = OSSL_PARAM_construct_end();
        ck_assert_int_eq(EVP_KDF_derive(ctx, out, out_len, params), 1);
        EVP_KDF_CTX_free(ctx);
        EVP_KDF_free(kdf);
}

static uint8_t *alloc(size_t len) {
        uint8_t *p = malloc(len ? len : 1);

        ck_assert_ptr_nonnull(p);
        return p;
}

/* ---- the vault update at every size the profiles allow ----------------------------------- */

/*
 * §5 hardened through the references: PRK = EVP_MAC HMAC-SHA256(U, V), then EVP_KDF KBKDF
 * (PRK, "sv1 vault", id || u64(e+1), n·m), against vault_update_hardened(), which computes
 * both halves from keyed states. Every n·m of every implemented profile entry whose keys
 * are the KBKDF update (n = n_min..n_max, each allowed m), each size once: 6 137 sizes from
 * 128 bytes to 128 KiB, so every count of 32-byte blocks with and without a 16-byte tail.
 * Ids, epochs and U are drawn per size; the vault is a prefix of one random pool, drawn
 * once (the generator costs more than the update: 335 MB in all).
 */
START_TEST(test_vault_update_every_size) {
        static uint8_t keys[SV_VAULT_MAX], ours[SV_VAULT_MAX], want[SV_VAULT_MAX];
        static bool seen[SV_VAULT_MAX / SV_M_MIN + 1];
        const struct profile_info *table;
        size_t count, sizes = 0, blocks_with_tail = 0;
        struct unit_rng g;

        unit_rng_init(&g, "vault_update_every_size");
        unit_rng_bytes(&g, keys, sizeof keys);
        table = profile_table(&count);
        for (size_t t = 0; t < count; t++) {
                const struct profile_info *pi = &table[t];

                if (!pi->implemented || pi->keys != PROFILE_KEYS_HKDF)
                        continue;
                for (unsigned mi = 0; mi < ARRAY_SIZE(pi->m_values); mi++)
                        for (unsigned n = pi->n_min; n <= pi->n_max; n++) {
                                uint8_t m = pi->m_values[mi], u[32], prk[32], context[SV_ID_MAX + 8];
                                char id[SV_ID_MAX + 1];
                                struct vault_params v;
                                size_t size = (size_t) n * m, id_len = unit_rng_range(&g, SV_ID_MIN, SV_ID_MAX);

                                ck_assert_uint_eq(size % SV_M_MIN, 0);
                                if (seen[size / SV_M_MIN])
                                        continue;
                                seen[size / SV_M_MIN] = true;
                                for (size_t i = 0; i < id_len; i++)
                                        id[i] = (char) ('a' + unit_rng_below(&g, 26));
                                id[id_len] = '\0';
                                v = unit_params(id, pi->profile, (uint16_t) n, m, pi->p_min, unit_rng_below(&g, 1u << 30));
                                unit_rng_bytes(&g, u, sizeof u);

                                ref_hmac(u, sizeof u, keys, size, prk);
                                memcpy(context, v.device_id, v.id_len);
                                be64_put(context + v.id_len, v.epoch + 1);
                                unit_kbkdf_openssl(prk, sizeof prk, "sv1 vault", context, v.id_len + 8u, want, size);
                                ck_assert_int_eq(vault_update_hardened(keys, &v, u, ours), 0);
                                unit_assert(memcmp(ours, want, size) == 0,
                                            "vault update differs from EVP_MAC + EVP_KDF at n=%u m=%u id_len=%zu", n, m, id_len);
                                sizes++;
                                blocks_with_tail += size % 32 != 0;
                        }
        }
        /* 128..65536 by 16, then 65568..131072 by 32. */
        ck_assert_uint_eq(sizes, (65536 - 128) / 16 + 1 + (131072 - 65536) / 32);
        ck_assert_uint_gt(blocks_with_tail, 0);
}
END_TEST

/* ---- KBKDF edges -------------------------------------------------------------------------- */

static void kbkdf_case(struct unit_rng *g, size_t key_len, const char *label, size_t context_len, size_t out_len) {
        uint8_t key[200], context[CRYPTO_KBKDF_INPUT_MAX], *ours = alloc(out_len), *want = alloc(out_len);

        ck_assert_uint_le(key_len, sizeof key);
        unit_rng_bytes(g, key, key_len);
        unit_rng_bytes(g, context, context_len);
        ck_assert_int_eq(crypto_kbkdf(key, key_len, label, context_len ? context : NULL, context_len, ours, out_len), 0);
        unit_kbkdf_openssl(key, key_len, label, context, context_len, want, out_len);
        unit_assert(memcmp(ours, want, out_len) == 0, "KBKDF differs from EVP_KDF: key %zu, label '%s', context %zu, L %zu",
                    key_len, label, context_len, out_len);
        free(ours);
        free(want);
}

START_TEST(test_kbkdf_edges) {
        /* L around the block size and around the bytes of the counter (256 and 65 536 blocks)
         * and of L·8 (32 and 8 192 bytes). */
        static const size_t lengths[] = {
                1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97, 127, 128, 129,
                8160, 8191, 8192, 8193, 8224, 8225, SV_VAULT_MAX - 1, SV_VAULT_MAX, SV_VAULT_MAX + 1,
                65536 * 32, 65536 * 32 + 1, 65537 * 32,
        };
        /* Not 0: OpenSSL's KBKDF refuses an empty key (ours would take it, like HMAC). */
        static const size_t key_lens[] = { 1, 16, 31, 32, 33, 63, 64, 65, 100, 128, 200 };
        struct unit_rng g;

        unit_rng_init(&g, "kbkdf_edges");
        for (size_t i = 0; i < ARRAY_SIZE(lengths); i++)
                kbkdf_case(&g, 32, "sv1 vault", 27, lengths[i]);
        for (size_t len = 1; len <= 200; len++)
                kbkdf_case(&g, 32, "sv1 vault", 16, len);
        for (size_t i = 0; i < ARRAY_SIZE(key_lens); i++)
                kbkdf_case(&g, key_lens[i], "sv1 vault", 20, 100);
        /* Every context length the inner message can have: one compression up to 55 bytes,
         * two from 56 (id_len 30 with "sv1 vault"), up to the largest accepted input. */
        for (size_t c = 0; c <= CRYPTO_KBKDF_INPUT_MAX - 9 - 9; c++)
                kbkdf_case(&g, 32, "sv1 vault", c, 96);
        kbkdf_case(&g, 32, "", CRYPTO_KBKDF_INPUT_MAX - 9, 64);
        kbkdf_case(&g, 32, "unit vault", 0, 4096);
}
END_TEST

START_TEST(test_kbkdf_refuses) {
        uint8_t key[32] = { 1 }, context[CRYPTO_KBKDF_INPUT_MAX] = { 0 }, out[64];

        memset(out, 0x77, sizeof out);
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", context, 8, out, 0), -EINVAL);
        /* One byte over the input bound, split either way. */
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "", context, CRYPTO_KBKDF_INPUT_MAX - 8, out, sizeof out), -EINVAL);
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", context, CRYPTO_KBKDF_INPUT_MAX - 17, out, sizeof out),
                         -EINVAL);
        /* L·8 must fit in 32 bits: refused before anything is written. */
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", context, 8, out, (size_t) 1 << 29), -EINVAL);
        ck_assert_int_eq(crypto_kbkdf(key, sizeof key, "sv1 vault", NULL, 8, out, sizeof out), -EINVAL);
        for (size_t i = 0; i < sizeof out; i++)
                ck_assert_uint_eq(out[i], 0x77);
}
END_TEST

/* ---- HMAC and HKDF ------------------------------------------------------------------------- */

START_TEST(test_hmac_edges) {
        /* Keys around the block (hashed above 64 bytes), messages around the padding edges. */
        static const size_t key_lens[] = { 0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 128, 129, 1000 };
        static const size_t msg_lens[] = { 0, 1, 31, 32, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 4096, 65536 + 7 };
        static uint8_t key[1000], msg[65536 + 7];
        struct unit_rng g;

        unit_rng_init(&g, "hmac_edges");
        for (size_t k = 0; k < ARRAY_SIZE(key_lens); k++)
                for (size_t m = 0; m < ARRAY_SIZE(msg_lens); m++) {
                        uint8_t ours[32], want[32];

                        unit_rng_bytes(&g, key, key_lens[k]);
                        unit_rng_bytes(&g, msg, msg_lens[m]);
                        ck_assert_int_eq(crypto_hmac_sha256(key, key_lens[k], msg, msg_lens[m], ours), 0);
                        ref_hmac(key, key_lens[k], msg, msg_lens[m], want);
                        unit_assert(memcmp(ours, want, 32) == 0, "HMAC differs from EVP_MAC: key %zu, message %zu",
                                    key_lens[k], msg_lens[m]);
                }
        /* NULL for an empty key or message, as callers pass them. */
        {
                uint8_t ours[32], want[32];

                ck_assert_int_eq(crypto_hmac_sha256(NULL, 0, NULL, 0, ours), 0);
                ref_hmac("", 0, "", 0, want);
                ck_assert(memcmp(ours, want, 32) == 0);
        }
}
END_TEST

START_TEST(test_hkdf_edges) {
        static const size_t out_lens[] = { 1, 16, 31, 32, 33, 63, 64, 65, 100, 255 * 32 - 1, 255 * 32 };
        static const size_t salt_lens[] = { 0, 1, 32, 64, 65, 100 };
        static const char *const infos[] = { NULL, "", "sv1 k5", "sv1 record", "a label longer than one SHA-256 block, "
                                                                               "so that T(i-1) || info spans two" };
        static uint8_t ours[255 * 32 + 1], want[255 * 32 + 1];
        uint8_t salt[100], ikm[80], prk[32], want_prk[32];
        struct unit_rng g;

        unit_rng_init(&g, "hkdf_edges");
        for (size_t s = 0; s < ARRAY_SIZE(salt_lens); s++) {
                unit_rng_bytes(&g, salt, sizeof salt);
                unit_rng_bytes(&g, ikm, sizeof ikm);
                ck_assert_int_eq(crypto_hkdf_extract(salt, salt_lens[s], ikm, sizeof ikm, prk), 0);
                ref_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_lens[s], ikm, sizeof ikm, NULL, want_prk, 32);
                unit_assert(memcmp(prk, want_prk, 32) == 0, "HKDF-Extract differs, salt %zu", salt_lens[s]);
        }
        ck_assert_int_eq(crypto_hkdf_extract(NULL, 0, ikm, 17, prk), 0);
        ref_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, NULL, 0, ikm, 17, NULL, want_prk, 32);
        ck_assert(memcmp(prk, want_prk, 32) == 0);

        for (size_t i = 0; i < ARRAY_SIZE(infos); i++)
                for (size_t o = 0; o < ARRAY_SIZE(out_lens); o++) {
                        unit_rng_bytes(&g, prk, sizeof prk);
                        ck_assert_int_eq(crypto_hkdf_expand(prk, infos[i], ours, out_lens[o]), 0);
                        ref_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, 32, infos[i], want, out_lens[o]);
                        unit_assert(memcmp(ours, want, out_lens[o]) == 0, "HKDF-Expand differs, info '%s', L %zu",
                                    infos[i] ? infos[i] : "(none)", out_lens[o]);

                        unit_rng_bytes(&g, salt, sizeof salt);
                        unit_rng_bytes(&g, ikm, sizeof ikm);
                        ck_assert_int_eq(crypto_hkdf(i % 2 ? salt : NULL, 32, ikm, 16 + i, infos[i], ours, out_lens[o]), 0);
                        ref_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, i % 2 ? salt : NULL, 32, ikm, 16 + i, infos[i], want,
                                 out_lens[o]);
                        unit_assert(memcmp(ours, want, out_lens[o]) == 0, "HKDF differs, info '%s', L %zu",
                                    infos[i] ? infos[i] : "(none)", out_lens[o]);
                }
        /* Over 255 blocks: refused, the output wiped. */
        memset(ours, 0x55, sizeof ours);
        ck_assert_int_eq(crypto_hkdf_expand(prk, "x", ours, 255 * 32 + 1), -EINVAL);
        ck_assert_int_eq(crypto_hkdf_expand(prk, "x", ours, 0), -EINVAL);
}
END_TEST

/* The record layer's pair: each output is its own HKDF-Expand of the one PRK. */
START_TEST(test_hkdf_expand32_v) {
        static const char *const infos[] = { "sv1 record", "sv1 next", "", "sv1 c2s" };
        uint8_t prk[32], a[32], b[32], c[32], d[32], want[32];
        uint8_t *const outs[] = { a, b, c, d };
        struct unit_rng g;

        unit_rng_init(&g, "hkdf_expand32_v");
        for (int round = 0; round < 16; round++) {
                unit_rng_bytes(&g, prk, sizeof prk);
                ck_assert_int_eq(crypto_hkdf_expand32_v(prk, infos, outs, ARRAY_SIZE(infos)), 0);
                for (size_t i = 0; i < ARRAY_SIZE(infos); i++) {
                        ref_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, 32, infos[i], want, 32);
                        unit_assert(memcmp(outs[i], want, 32) == 0, "expand32_v output %zu ('%s') differs", i, infos[i]);
                }
        }
        ck_assert_int_eq(crypto_hkdf_expand32_v(prk, infos, outs, 0), 0);
}
END_TEST

static Suite *hmac_suite(void) {
        Suite *s = suite_create("hmac");
        TCase *tc = tcase_create("equal to OpenSSL");

        /* The every-size pass derives 335 MB twice: ≈ 9 s of CPU, ≈ 45 s under ASan (OpenSSL's
         * KBKDF allocates per block), several times that on a loaded 2-core machine. */
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, test_vault_update_every_size);
        tcase_add_test(tc, test_kbkdf_edges);
        tcase_add_test(tc, test_kbkdf_refuses);
        tcase_add_test(tc, test_hmac_edges);
        tcase_add_test(tc, test_hkdf_edges);
        tcase_add_test(tc, test_hkdf_expand32_v);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(hmac_suite());
}
