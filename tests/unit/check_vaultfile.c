/* SPDX-License-Identifier: MIT */
/*
 * common/vaultfile.c, the vault file codec: round trip, strict decoding (every truncation, a
 * trailing byte, magic, version, bounds), and that every header byte is authenticated.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "unit.h"
#include "vaultfile.h"

static struct vaultfile_header hdr;
static uint8_t kek[VAULTFILE_KEK_LEN], auth[VAULTFILE_AUTH_LEN];
static uint8_t vault[SV_VAULT_MAX];
static uint8_t file[VAULTFILE_MAX];
static size_t file_len;

static void make(uint16_t n, uint8_t m, const char *server) {
        memset(&hdr, 0, sizeof hdr);
        ck_assert_int_eq(vault_params_set_id(&hdr.params, "sensor-7"), 0);
        hdr.params.profile = SV_PROFILE_HARDENED;
        hdr.params.n = n;
        hdr.params.m = m;
        hdr.params.p = 16;
        hdr.params.epoch = 41;
        strcpy(hdr.server, server);
        hdr.parent_name_len = 34;
        memset(hdr.parent_name, 0x0b, hdr.parent_name_len);
        hdr.parent_name[0] = 0x00;
        hdr.sealed_pub_len = 90;
        memset(hdr.sealed_pub, 0x11, hdr.sealed_pub_len);
        hdr.sealed_priv_len = 126;
        memset(hdr.sealed_priv, 0x22, hdr.sealed_priv_len);
        hdr.pcr_mask = 1u << 7;
        hdr.kek_auth = VAULTFILE_KEK_AUTH_KEY_FILE;
        hdr.nv_index = 0x01501234;
        hdr.counter = 1000;
        ck_assert_int_eq(crypto_random(hdr.iv, sizeof hdr.iv), 0);
        ck_assert_int_eq(crypto_random(kek, sizeof kek), 0);
        ck_assert_int_eq(crypto_random(auth, sizeof auth), 0);
        ck_assert_int_eq(crypto_random(vault, vault_size(&hdr.params)), 0);
        ck_assert_int_eq(vaultfile_seal(&hdr, kek, auth, vault, file, sizeof file, &file_len), 0);
        ck_assert_uint_eq(file_len, vaultfile_size(&hdr));
}

START_TEST(round_trip) {
        static const struct { uint16_t n; uint8_t m; const char *server; } cases[] = {
                { 256, 16, "auth.example.net:7410" },
                { 8 * 4, 32, "" },
                { SV_N_MAX, 32, "[::1]:7410" },
        };
        static uint8_t out_vault[SV_VAULT_MAX];
        struct vaultfile_header h;
        uint8_t out_auth[VAULTFILE_AUTH_LEN];

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                make(cases[i].n, cases[i].m, cases[i].server);
                ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);
                ck_assert_str_eq(h.params.device_id, "sensor-7");
                ck_assert_uint_eq(h.params.n, cases[i].n);
                ck_assert_uint_eq(h.params.epoch, 41);
                ck_assert_str_eq(h.server, cases[i].server);
                ck_assert_uint_eq(h.counter, 1000);
                ck_assert_uint_eq(h.nv_index, 0x01501234);
                ck_assert_uint_eq(h.pcr_mask, 1u << 7);
                ck_assert_uint_eq(h.kek_auth, VAULTFILE_KEK_AUTH_KEY_FILE);
                ck_assert_mem_eq(h.sealed_priv, hdr.sealed_priv, hdr.sealed_priv_len);
                ck_assert_int_eq(vaultfile_open(file, file_len, &h, kek, out_auth, out_vault), 0);
                ck_assert_mem_eq(out_auth, auth, sizeof auth);
                ck_assert_mem_eq(out_vault, vault, vault_size(&h.params));
        }
}
END_TEST

START_TEST(truncation_and_trailing) {
        static uint8_t longer[VAULTFILE_MAX + 1];
        struct vaultfile_header h;

        make(64, 16, "h:1");
        for (size_t len = 0; len < file_len; len++)
                ck_assert_int_eq(vaultfile_decode(file, len, &h), -EBADMSG);
        memcpy(longer, file, file_len);
        longer[file_len] = 0;
        ck_assert_int_eq(vaultfile_decode(longer, file_len + 1, &h), -EBADMSG);
}
END_TEST

START_TEST(magic_version_bounds) {
        struct vaultfile_header h;

        make(64, 16, "");
        file[0] ^= 1;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[0] ^= 1;
        file[9] = 4;                    /* version 4 (3 is a vault with a key share) */
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EPROTONOSUPPORT);
        file[9] = 0;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EPROTONOSUPPORT);
        file[9] = 2;
        file[10] = 0;                   /* id_len 0 */
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[10] = 65;                  /* id_len over the maximum */
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[10] = 8;
        file[11] = ' ';                 /* invalid id character */
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[11] = 's';
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);

        /* An encoder refuses what a decoder would refuse. */
        hdr.sealed_pub_len = VAULTFILE_BLOB_MAX + 1;
        ck_assert_uint_eq(vaultfile_size(&hdr), 0);
        ck_assert_int_eq(vaultfile_seal(&hdr, kek, auth, vault, file, sizeof file, &file_len), -EINVAL);
}
END_TEST

/* Version 1 (before kek_auth) still decodes, as an empty-auth KEK; kek_auth has two values. */
START_TEST(version_1_and_kek_auth) {
        static uint8_t v1[VAULTFILE_MAX];
        struct vaultfile_header h;
        size_t hlen, at;

        make(64, 16, "h:1");
        hlen = file_len - VAULTFILE_CT_LEN(vault_size(&hdr.params));
        at = hlen - (4 + 8 + SV_GCM_IV_LEN + 4) - 1;    /* kek_auth: before nv_index */
        ck_assert_uint_eq(file[at], VAULTFILE_KEK_AUTH_KEY_FILE);
        file[at] = 2;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[at] = VAULTFILE_KEK_AUTH_NONE;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);
        ck_assert_uint_eq(h.kek_auth, VAULTFILE_KEK_AUTH_NONE);

        memcpy(v1, file, at);
        memcpy(v1 + at, file + at + 1, file_len - at - 1);
        v1[9] = 1;
        ck_assert_int_eq(vaultfile_decode(v1, file_len - 1, &h), 0);
        ck_assert_uint_eq(h.kek_auth, VAULTFILE_KEK_AUTH_NONE);
        ck_assert_uint_eq(h.nv_index, 0x01501234);
        ck_assert_uint_eq(h.counter, 1000);
        ck_assert_uint_eq(h.pcr_mask, 1u << 7);
        ck_assert_int_eq(vaultfile_decode(v1, file_len, &h), -EBADMSG);
}
END_TEST

/* Protocol 1.1 §10: a vault with a key share is written as version 3, whose kex byte follows
 * kek_auth; kex none stays version 2 (what an older vaultd reads), and 2 is read as none. */
START_TEST(version_3_kex) {
        static uint8_t out_vault[SV_VAULT_MAX];
        struct vaultfile_header h;
        uint8_t out_auth[VAULTFILE_AUTH_LEN];
        size_t v2_len, hlen, at;

        make(64, 16, "h:1");
        ck_assert_uint_eq(file[9], VAULTFILE_VERSION);
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);
        ck_assert_uint_eq(h.params.kex, SV_KEX_NONE);
        v2_len = file_len;

        hdr.params.kex = SV_KEX_X25519;
        ck_assert_int_eq(vaultfile_seal(&hdr, kek, auth, vault, file, sizeof file, &file_len), 0);
        ck_assert_uint_eq(file_len, v2_len + 1);
        ck_assert_uint_eq(file_len, vaultfile_size(&hdr));
        ck_assert_uint_eq(file[8], 0);
        ck_assert_uint_eq(file[9], VAULTFILE_VERSION_KEX);
        hlen = file_len - VAULTFILE_CT_LEN(vault_size(&hdr.params));
        at = hlen - (4 + 8 + SV_GCM_IV_LEN + 4) - 1;    /* kex: after kek_auth, before nv_index */
        ck_assert_uint_eq(file[at], SV_KEX_X25519);
        ck_assert_uint_eq(file[at - 1], VAULTFILE_KEK_AUTH_KEY_FILE);
        memset(&h, 0, sizeof h);
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);
        ck_assert_uint_eq(h.params.kex, SV_KEX_X25519);
        ck_assert_uint_eq(h.kek_auth, VAULTFILE_KEK_AUTH_KEY_FILE);
        ck_assert_uint_eq(h.nv_index, 0x01501234);
        ck_assert_uint_eq(h.counter, 1000);
        ck_assert_int_eq(vaultfile_open(file, file_len, &h, kek, out_auth, out_vault), 0);
        ck_assert_mem_eq(out_vault, vault, vault_size(&h.params));

        /* Version 3 never says none (that is version 2), nor a kex the table lacks. */
        file[at] = SV_KEX_NONE;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[at] = SV_KEX_X25519 + 1;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), -EBADMSG);
        file[at] = SV_KEX_X25519;
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);

        /* x25519 is hardened only: a paper vault with it is neither written nor read. */
        hdr.params.profile = SV_PROFILE_PAPER;
        ck_assert_uint_eq(vaultfile_size(&hdr), 0);
        ck_assert_int_eq(vaultfile_seal(&hdr, kek, auth, vault, file, sizeof file, &file_len), -EINVAL);
}
END_TEST

/* Every byte of the file is covered: a flip either breaks decoding or fails the tag. */
START_TEST(every_byte_authenticated) {
        static uint8_t out_vault[SV_VAULT_MAX];
        struct vaultfile_header h;
        uint8_t out_auth[VAULTFILE_AUTH_LEN], zero[VAULTFILE_AUTH_LEN] = { 0 };

        make(32, 16, "x:2");
        if (_i == 1) {                  /* the same for a version 3 file (kex x25519) */
                hdr.params.kex = SV_KEX_X25519;
                ck_assert_int_eq(vaultfile_seal(&hdr, kek, auth, vault, file, sizeof file, &file_len), 0);
        }
        for (size_t i = 0; i < file_len; i++) {
                file[i] ^= 0x80;
                if (vaultfile_decode(file, file_len, &h) == 0) {
                        int r;

                        memset(out_auth, 0xaa, sizeof out_auth);
                        r = vaultfile_open(file, file_len, &h, kek, out_auth, out_vault);

                        ck_assert_msg(r == -EBADMSG || r == -EINVAL, "byte %zu: open returned %d", i, r);
                        ck_assert_mem_eq(out_auth, zero, sizeof zero);      /* wiped on failure */
                }
                file[i] ^= 0x80;
        }
}
END_TEST

START_TEST(wrong_key) {
        static uint8_t out_vault[SV_VAULT_MAX];
        struct vaultfile_header h;
        uint8_t out_auth[VAULTFILE_AUTH_LEN];

        make(64, 16, "");
        ck_assert_int_eq(vaultfile_decode(file, file_len, &h), 0);
        kek[0] ^= 1;
        ck_assert_int_eq(vaultfile_open(file, file_len, &h, kek, out_auth, out_vault), -EBADMSG);
}
END_TEST

static Suite *vaultfile_suite(void) {
        Suite *s = suite_create("vaultfile");
        TCase *tc = tcase_create("codec");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, round_trip);
        tcase_add_test(tc, truncation_and_trailing);
        tcase_add_test(tc, magic_version_bounds);
        tcase_add_test(tc, version_1_and_kek_auth);
        tcase_add_test(tc, version_3_kex);
        tcase_add_loop_test(tc, every_byte_authenticated, 0, 2);
        tcase_add_test(tc, wrong_key);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(vaultfile_suite());
}
