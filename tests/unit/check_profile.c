/* SPDX-License-Identifier: MIT */
/*
 * The profile table (common/profile.c): every length it gives agrees with the known-answer
 * vectors and with the arithmetic the code used before the table, for every allowed
 * parameter; everything outside the table is refused; the fixed buffers hold its largest
 * messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "text.h"
#include "unit.h"
#include "vault.h"
#include "wire.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The body sizes as proto.h computed them before the table (and as docs/protocol.md §2 lists them). */
#define OLD_CHALLENGE_LEN(p)            (1 + 2 * (size_t) (p))
#define OLD_HELLO_BODY_LEN(idl)         (1 + 1 + (size_t) (idl) + 16 + 8)
#define OLD_CHALLENGE_BODY_LEN(p)       (16 + OLD_CHALLENGE_LEN(p))
#define OLD_RESPONSE_PT_LEN(p)          (16 + 32 + 16 + OLD_CHALLENGE_LEN(p))
#define OLD_RESPONSE_BODY_LEN(p)        (OLD_RESPONSE_PT_LEN(p) + 16)
#define OLD_CONFIRM_BODY_LEN            (16 + 32 + 16)
#define OLD_COMMIT_BODY_LEN             16
#define OLD_ERROR_BODY_LEN              1

static const uint8_t types[] = {
        SV_MSG_HELLO, SV_MSG_CHALLENGE, SV_MSG_RESPONSE, SV_MSG_CONFIRM, SV_MSG_COMMIT, SV_MSG_ERROR,
};

static size_t old_len(uint8_t type, uint8_t id_len, uint8_t p) {
        switch (type) {
        case SV_MSG_HELLO: return OLD_HELLO_BODY_LEN(id_len);
        case SV_MSG_CHALLENGE: return OLD_CHALLENGE_BODY_LEN(p);
        case SV_MSG_RESPONSE: return OLD_RESPONSE_BODY_LEN(p);
        case SV_MSG_CONFIRM: return OLD_CONFIRM_BODY_LEN;
        case SV_MSG_COMMIT: return OLD_COMMIT_BODY_LEN;
        case SV_MSG_ERROR: return OLD_ERROR_BODY_LEN;
        default: return 0;
        }
}

/* The old checks of vault_params_validate(), bundle_parse() and the store's schema. */
static bool old_shape_valid(uint64_t profile, uint64_t n, uint64_t m, uint64_t p) {
        return (profile == 1 || profile == 2) && n >= 8 && n <= 4096 && (m == 16 || m == 32) &&
                p >= 1 && p <= 64 && 2 * p <= n;
}

START_TEST(test_table_rows) {
        const struct profile_info *t;
        size_t count = 0, implemented = 0;

        t = profile_table(&count);
        ck_assert_uint_ge(count, 2);
        for (size_t i = 0; i < count; i++) {
                const struct profile_info *pi = &t[i];

                /* Within the protocol-wide bounds that size the buffers, defaults allowed. */
                ck_assert_uint_ge(pi->n_min, SV_N_MIN);
                ck_assert_uint_le(pi->n_max, SV_N_MAX);
                ck_assert_uint_ge(pi->p_min, SV_P_MIN);
                ck_assert_uint_le(pi->p_max, SV_P_MAX);
                ck_assert_uint_le(pi->m_values[1], SV_KEY_MAX);
                ck_assert(pi->share_len == 0 || pi->share_len == SV_KEX_SHARE_MAX);
                ck_assert(pi->kex == SV_KEX_NONE ? pi->share_len == 0 : pi->share_len > 0);
                ck_assert(profile_n_valid(pi, pi->n_default));
                ck_assert(profile_m_valid(pi, pi->m_default));
                ck_assert(profile_p_valid(pi, pi->n_default, pi->p_default));
                ck_assert_str_eq(profile_name(pi->profile), pi->name);
                ck_assert_int_eq(profile_from_name(pi->name), pi->profile);
                /* No entry twice. */
                for (size_t j = 0; j < i; j++)
                        ck_assert(t[j].profile != pi->profile || t[j].kex != pi->kex);
                if (pi->implemented) {
                        implemented++;
                        ck_assert_ptr_eq(profile_find(pi->profile, pi->kex), pi);
                        /* Revision 1.1 §10: the key share with the hardened profile only. */
                        ck_assert(pi->kex == SV_KEX_NONE || pi->profile == SV_PROFILE_HARDENED);
                } else
                        ck_assert_ptr_null(profile_find(pi->profile, pi->kex));
        }
        ck_assert_uint_eq(implemented, 3);
        ck_assert_uint_eq(profile_find(SV_PROFILE_HARDENED, SV_KEX_X25519)->keys, PROFILE_KEYS_HKDF);
        ck_assert_uint_eq(profile_find(SV_PROFILE_HARDENED, SV_KEX_NONE)->keys, PROFILE_KEYS_HKDF);
        ck_assert_uint_eq(profile_find(SV_PROFILE_PAPER, SV_KEX_NONE)->keys, PROFILE_KEYS_RAW);
        ck_assert_int_eq(profile_from_name("x25519"), -EINVAL);
        ck_assert_int_eq(profile_from_name(""), -EINVAL);
        ck_assert_int_eq(profile_from_name("Hardened"), -EINVAL);
        ck_assert_ptr_null(profile_name(0));
        ck_assert_ptr_null(profile_name(3));
}
END_TEST

/* Every allowed (profile, kex none, id_len, p): the table's length is the old one, and the
 * encoders produce frames of exactly that length. */
START_TEST(test_lengths_as_before) {
        static const uint8_t profiles[] = { SV_PROFILE_HARDENED, SV_PROFILE_PAPER };
        size_t max[ARRAY_SIZE(types)] = { 0 }, checked = 0;

        for (size_t pr = 0; pr < ARRAY_SIZE(profiles); pr++)
                for (unsigned id_len = SV_ID_MIN; id_len <= SV_ID_MAX; id_len++)
                        for (unsigned p = SV_P_MIN; p <= SV_P_MAX; p++)
                                for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
                                        struct wire_params w = { profiles[pr], SV_KEX_NONE, (uint8_t) id_len, (uint8_t) p };
                                        size_t len = wire_body_len(types[t], &w);

                                        ck_assert_msg(len == old_len(types[t], (uint8_t) id_len, (uint8_t) p),
                                                      "type %u profile %u id_len %u p %u: %zu", types[t],
                                                      profiles[pr], id_len, p, len);
                                        max[t] = len > max[t] ? len : max[t];
                                        checked++;
                                        /* §10: the share adds 32 bytes to M1 and M2 of hardened, nothing else. */
                                        w.kex = SV_KEX_X25519;
                                        len = wire_body_len(types[t], &w);
                                        if (profiles[pr] != SV_PROFILE_HARDENED)
                                                ck_assert_uint_eq(len, 0);
                                        else
                                                ck_assert_uint_eq(len, old_len(types[t], (uint8_t) id_len, (uint8_t) p) +
                                                                  (types[t] == SV_MSG_HELLO || types[t] == SV_MSG_CHALLENGE ?
                                                                   SV_X25519_LEN : 0));
                                }
        ck_assert_uint_eq(checked, 2 * 64 * 64 * ARRAY_SIZE(types));

        /* The fixed buffers are exactly the largest frames (M1 and M2 with the share). */
        ck_assert_uint_eq(SV_HEADER_LEN + max[0] + SV_X25519_LEN, SV_HELLO_FRAME_MAX);
        ck_assert_uint_eq(SV_HEADER_LEN + max[1] + SV_X25519_LEN, SV_CHALLENGE_FRAME_MAX);
        ck_assert_uint_eq(SV_HEADER_LEN + max[2], SV_RESPONSE_FRAME_MAX);
        ck_assert_uint_eq(max[2] - SV_TAG_LEN, SV_RESPONSE_PT_MAX);
        ck_assert_uint_eq(SV_HEADER_LEN + max[3], SV_CONFIRM_FRAME_LEN);
        ck_assert_uint_eq(SV_HEADER_LEN + max[4], SV_COMMIT_FRAME_LEN);
        ck_assert_uint_eq(SV_HEADER_LEN + max[5], SV_ERROR_FRAME_LEN);
        ck_assert_uint_le(SV_RESPONSE_FRAME_MAX, SV_FRAME_MAX);

        /* What the encoders write agrees. */
        for (size_t pr = 0; pr < ARRAY_SIZE(profiles); pr++)
                for (unsigned id_len = SV_ID_MIN; id_len <= SV_ID_MAX; id_len++) {
                        struct msg_hello m = { .profile = profiles[pr], .id_len = (uint8_t) id_len };
                        struct wire_params w = { profiles[pr], SV_KEX_NONE, (uint8_t) id_len, 0 };
                        uint8_t out[SV_HELLO_FRAME_MAX];
                        size_t len = 0;

                        memset(m.device_id, 'a', id_len);
                        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), 0);
                        ck_assert_uint_eq(len, SV_HEADER_LEN + wire_body_len(SV_MSG_HELLO, &w));
                        ck_assert_uint_eq(be16_get(out + 2), wire_body_len(SV_MSG_HELLO, &w));
                }
        for (unsigned p = SV_P_MIN; p <= SV_P_MAX; p++) {
                struct msg_challenge m = { .c1 = { .p = (uint8_t) p } };
                struct vault_params v = unit_params("x", SV_PROFILE_PAPER, SV_N_MAX, 16, (uint8_t) p, 0);
                uint8_t out[SV_CHALLENGE_FRAME_MAX];
                size_t len = 0;

                for (unsigned i = 0; i < p; i++)
                        m.c1.idx[i] = (uint16_t) i;
                ck_assert_int_eq(wire_encode_challenge(&m, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, &v));
        }
}
END_TEST

/* What a receiver accepts before it knows the parameters: M1 from 27 to 90 bytes (§2), and
 * 32 more with the key share (§10). */
START_TEST(test_length_ranges) {
        size_t lo = 0, hi = 0;

        ck_assert_int_eq(wire_body_len_range(SV_MSG_HELLO, &lo, &hi), 0);
        ck_assert_uint_eq(lo, OLD_HELLO_BODY_LEN(SV_ID_MIN));
        ck_assert_uint_eq(hi, OLD_HELLO_BODY_LEN(SV_ID_MAX) + SV_X25519_LEN);
        ck_assert_int_eq(wire_body_len_range(SV_MSG_CHALLENGE, &lo, &hi), 0);
        ck_assert_uint_eq(lo, OLD_CHALLENGE_BODY_LEN(1));
        ck_assert_uint_eq(hi, OLD_CHALLENGE_BODY_LEN(64) + SV_X25519_LEN);
        ck_assert_int_eq(wire_body_len_range(SV_MSG_RESPONSE, &lo, &hi), 0);
        ck_assert_uint_eq(lo, OLD_RESPONSE_BODY_LEN(1));
        ck_assert_uint_eq(hi, OLD_RESPONSE_BODY_LEN(64));
        ck_assert_int_eq(wire_body_len_range(SV_MSG_CONFIRM, &lo, &hi), 0);
        ck_assert_uint_eq(lo, OLD_CONFIRM_BODY_LEN);
        ck_assert_uint_eq(hi, OLD_CONFIRM_BODY_LEN);
        lo = hi = 7;
        ck_assert_int_eq(wire_body_len_range(0, &lo, &hi), -EINVAL);
        ck_assert_int_eq(wire_body_len_range(6, &lo, &hi), -EINVAL);
        ck_assert_uint_eq(lo, 7);
        ck_assert_uint_eq(hi, 7);
}
END_TEST

/* Every profile and kex outside the implemented entries, every unknown type, every id_len and
 * p out of range gives no length. */
START_TEST(test_out_of_range_refused) {
        for (unsigned profile = 0; profile <= UINT8_MAX; profile++)
                for (unsigned kex = 0; kex <= UINT8_MAX; kex++) {
                        bool ok = ((profile == SV_PROFILE_HARDENED || profile == SV_PROFILE_PAPER) && kex == SV_KEX_NONE) ||
                                  (profile == SV_PROFILE_HARDENED && kex == SV_KEX_X25519);
                        struct wire_params w = { (uint8_t) profile, (uint8_t) kex, 11, 4 };

                        ck_assert_msg((profile_find(profile, kex) != NULL) == ok, "profile %u kex %u", profile, kex);
                        for (size_t t = 0; t < ARRAY_SIZE(types); t++)
                                ck_assert_msg((wire_body_len(types[t], &w) != 0) == ok, "type %u profile %u kex %u",
                                              types[t], profile, kex);
                }
        /* Wide values are not narrowed into valid ones. */
        ck_assert_ptr_null(profile_find(0x100 + SV_PROFILE_HARDENED, SV_KEX_NONE));
        ck_assert_ptr_null(profile_find(SV_PROFILE_HARDENED, 0x100));
        ck_assert_ptr_null(profile_find(UINT64_MAX, UINT64_MAX));
        /* The key share of revision 1.1 §10: hardened only. */
        ck_assert_ptr_nonnull(profile_find(SV_PROFILE_HARDENED, SV_KEX_X25519));
        ck_assert_ptr_null(profile_find(SV_PROFILE_PAPER, SV_KEX_X25519));

        for (unsigned type = 0; type <= UINT8_MAX; type++) {
                struct wire_params w = { SV_PROFILE_HARDENED, SV_KEX_NONE, 11, 4 };
                bool known = memchr(types, (int) type, sizeof types) != NULL;

                ck_assert_msg((wire_body_len((uint8_t) type, &w) != 0) == known, "type %u", type);
        }
        for (unsigned v = 0; v <= UINT8_MAX; v++) {
                struct wire_params w = { SV_PROFILE_PAPER, SV_KEX_NONE, (uint8_t) v, (uint8_t) v };
                bool id_ok = v >= SV_ID_MIN && v <= SV_ID_MAX, p_ok = v >= SV_P_MIN && v <= SV_P_MAX;

                ck_assert_msg((wire_body_len(SV_MSG_HELLO, &w) != 0) == id_ok, "id_len %u", v);
                ck_assert_msg((wire_body_len(SV_MSG_CHALLENGE, &w) != 0) == p_ok, "M2 p %u", v);
                ck_assert_msg((wire_body_len(SV_MSG_RESPONSE, &w) != 0) == p_ok, "M3 p %u", v);
                /* Messages that do not depend on id_len or p ignore them. */
                ck_assert_uint_eq(wire_body_len(SV_MSG_CONFIRM, &w), OLD_CONFIRM_BODY_LEN);
                ck_assert_uint_eq(wire_body_len(SV_MSG_COMMIT, &w), OLD_COMMIT_BODY_LEN);
                ck_assert_uint_eq(wire_body_len(SV_MSG_ERROR, &w), OLD_ERROR_BODY_LEN);
        }
}
END_TEST

/* n, m and p, each over its whole neighbourhood and beyond: the table allows exactly what the
 * old checks allowed, and vault_params_validate() follows it. */
START_TEST(test_shapes_as_before) {
        static const uint64_t wide[] = { 0x10000 + 256, 0x100000010ull, UINT64_MAX, (uint64_t) INT64_MAX + 1 };
        size_t accepted = 0;

        for (unsigned profile = 0; profile <= 3; profile++)
                for (uint64_t n = 0; n <= SV_N_MAX + 70; n++)
                        for (uint64_t p = 0; p <= SV_P_MAX + 2; p++) {
                                static const uint64_t ms[] = { 0, 15, 16, 17, 24, 31, 32, 33, 48, 64, 256 + 16 };

                                for (size_t k = 0; k < ARRAY_SIZE(ms); k++) {
                                        bool old = old_shape_valid(profile, n, ms[k], p);
                                        struct vault_params v = { .device_id = "x", .id_len = 1 };

                                        /* Plain ifs: a Check assertion per case would dominate the run. */
                                        if ((profile_check(profile, SV_KEX_NONE, n, ms[k], p) == 0) != old)
                                                ck_abort_msg("profile %u n %" PRIu64 " m %" PRIu64 " p %" PRIu64,
                                                             profile, n, ms[k], p);
                                        if ((profile_check(profile, SV_KEX_X25519, n, ms[k], p) == 0) !=
                                            (old && profile == SV_PROFILE_HARDENED))
                                                ck_abort_msg("kex x25519: profile %u n %" PRIu64, profile, n);
                                        if (n <= UINT16_MAX && ms[k] <= UINT8_MAX) {
                                                v.profile = (uint8_t) profile;
                                                v.n = (uint16_t) n;
                                                v.m = (uint8_t) ms[k];
                                                v.p = (uint8_t) p;
                                                if ((vault_params_validate(&v) == 0) != old)
                                                        ck_abort_msg("vault_params_validate disagrees: n %" PRIu64
                                                                     " m %" PRIu64 " p %" PRIu64, n, ms[k], p);
                                        }
                                        accepted += old;
                                }
                        }
        /* 2 profiles x 2 values of m x the sum over n = 8..4096 of min(64, n/2). */
        ck_assert_uint_eq(accepted, 1032144);
        for (size_t i = 0; i < ARRAY_SIZE(wide); i++) {
                ck_assert_int_eq(profile_check(SV_PROFILE_HARDENED, SV_KEX_NONE, wide[i], 16, 16), -EINVAL);
                ck_assert_int_eq(profile_check(SV_PROFILE_HARDENED, SV_KEX_NONE, 256, wide[i], 16), -EINVAL);
                ck_assert_int_eq(profile_check(SV_PROFILE_HARDENED, SV_KEX_NONE, 256, 16, wide[i]), -EINVAL);
                ck_assert_int_eq(profile_check(wide[i], SV_KEX_NONE, 256, 16, 16), -EINVAL);
        }
        ck_assert(!profile_n_valid(NULL, 256));
        ck_assert(!profile_m_valid(NULL, 16));
        ck_assert(!profile_p_valid(NULL, 256, 16));
}
END_TEST

static size_t hex_len(const char *value) {
        size_t n = strcspn(value, " \t\r\n");

        ck_assert_uint_eq(n % 2, 0);
        return n / 2;
}

/* The known-answer vectors: every frame's length is the table's for the case's parameters. */
/* What may be enrolled: every row of the table, implemented or not; kex names both ways. */
START_TEST(test_entry_and_kex_names) {
        size_t count;
        const struct profile_info *t = profile_table(&count);

        for (size_t i = 0; i < count; i++)
                ck_assert_ptr_eq(profile_entry(t[i].profile, t[i].kex), &t[i]);
        ck_assert_ptr_nonnull(profile_entry(SV_PROFILE_HARDENED, SV_KEX_X25519));
        ck_assert_ptr_null(profile_entry(SV_PROFILE_PAPER, SV_KEX_X25519));
        ck_assert_ptr_null(profile_entry(SV_PROFILE_HARDENED, 2));
        ck_assert_ptr_null(profile_entry(0, SV_KEX_NONE));
        ck_assert_ptr_null(profile_entry(SV_PROFILE_HARDENED, UINT64_MAX));
        ck_assert_str_eq(profile_kex_name(SV_KEX_NONE), "none");
        ck_assert_str_eq(profile_kex_name(SV_KEX_X25519), "x25519");
        ck_assert_ptr_null(profile_kex_name(2));
        ck_assert_ptr_null(profile_kex_name(UINT64_MAX));
        ck_assert_int_eq(profile_kex_from_name("none"), SV_KEX_NONE);
        ck_assert_int_eq(profile_kex_from_name("x25519"), SV_KEX_X25519);
        ck_assert_int_eq(profile_kex_from_name("X25519"), -EINVAL);
        ck_assert_int_eq(profile_kex_from_name(""), -EINVAL);
        ck_assert_int_eq(profile_kex_from_name("none "), -EINVAL);
}
END_TEST

START_TEST(test_vectors) {
        FILE *f = fopen(VECTORS_PUBLIC, "re");
        char *line = NULL, id[SV_ID_MAX + 1] = "";
        size_t cap = 0;
        int profile = -1, p = -1;
        unsigned frames = 0, cases = 0;

        ck_assert_msg(f, "cannot open %s", VECTORS_PUBLIC);
        while (getline(&line, &cap, f) > 0) {
                char *key, *value;

                if (text_split_setting(line, &key, &value) <= 0)
                        continue;
                if (strcmp(key, "name") == 0) {
                        profile = p = -1;
                        id[0] = '\0';
                        cases++;
                } else if (strcmp(key, "profile") == 0)
                        profile = profile_from_name(value);
                else if (strcmp(key, "p") == 0)
                        p = atoi(value);
                else if (strcmp(key, "device_id") == 0) {
                        ck_assert_uint_le(strlen(value), SV_ID_MAX);
                        strcpy(id, value);
                } else if (key[0] == 'm' && key[1] >= '1' && key[1] <= '5' && key[2] == '\0') {
                        struct wire_params w;
                        size_t len;

                        ck_assert(profile > 0 && p > 0 && id[0]);
                        w = (struct wire_params) { (uint8_t) profile, SV_KEX_NONE, (uint8_t) strlen(id), (uint8_t) p };
                        len = wire_body_len((uint8_t) (key[1] - '0'), &w);
                        ck_assert_msg(len != 0 && hex_len(value) == SV_HEADER_LEN + len,
                                      "case %u %s: %zu bytes, table %zu", cases, key, hex_len(value), len);
                        frames++;
                }
        }
        free(line);
        fclose(f);
        ck_assert_uint_ge(cases, 4);
        ck_assert_uint_eq(frames, 5 * cases);
}
END_TEST

static Suite *profile_suite(void) {
        Suite *s = suite_create("profile");
        TCase *tc = tcase_create("table");

        tcase_add_test(tc, test_table_rows);
        tcase_add_test(tc, test_lengths_as_before);
        tcase_add_test(tc, test_length_ranges);
        tcase_add_test(tc, test_out_of_range_refused);
        tcase_add_test(tc, test_shapes_as_before);
        tcase_add_test(tc, test_entry_and_kex_names);
        tcase_add_test(tc, test_vectors);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(profile_suite());
}
