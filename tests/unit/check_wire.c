/* SPDX-License-Identifier: MIT */

/*
 * common/wire: framing and message codecs (protocol §3–4). Round trips with exact byte
 * layouts, then a malformed-input table run against both the decoders and the state
 * machine steps that receive each message, on frames taken from real handshakes.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "wire.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- round trips ---------------------------------------------------------------------- */

START_TEST(test_hello_round_trip) {
        char id64[65];
        const struct {
                const char *id;
                uint8_t profile;
                uint64_t epoch;
        } cases[] = {
                { "a", SV_PROFILE_HARDENED, 0 },
                { "a", SV_PROFILE_PAPER, UINT64_MAX },
                { id64, SV_PROFILE_HARDENED, UINT64_MAX },
                { id64, SV_PROFILE_PAPER, 0 },
                { "Z.9_:-", SV_PROFILE_HARDENED, 0x0102030405060708ull },
        };

        for (int i = 0; i < 64; i++)
                id64[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"[i];
        id64[64] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct msg_hello m = { .profile = cases[i].profile, .epoch = cases[i].epoch }, d;
                size_t idl = strlen(cases[i].id), len = 0, body = 1 + 1 + idl + 16 + 8;
                uint8_t out[SV_HELLO_FRAME_MAX + 8], want[SV_HELLO_FRAME_MAX];

                m.id_len = (uint8_t) idl;
                memcpy(m.device_id, cases[i].id, idl);
                for (int k = 0; k < 16; k++)
                        m.session_id[k] = (uint8_t) (0xa0 + k);

                /* The layout of §4, written out. */
                want[0] = 1;
                want[1] = 1;
                want[2] = (uint8_t) (body >> 8);
                want[3] = (uint8_t) body;
                want[4] = cases[i].profile;
                want[5] = (uint8_t) idl;
                memcpy(want + 6, cases[i].id, idl);
                memcpy(want + 6 + idl, m.session_id, 16);
                be64_put(want + 6 + idl + 16, cases[i].epoch);

                ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, 4 + body);
                ck_assert_uint_eq(len, SV_HEADER_LEN + wire_body_len(SV_MSG_HELLO, &(struct wire_params) {
                        m.profile, SV_KEX_NONE, (uint8_t) idl, 0 }));
                ck_assert_msg(memcmp(out, want, len) == 0, "case %zu: %s", i, unit_hex(out, len));

                memset(&d, 0xee, sizeof d);
                ck_assert_int_eq(wire_decode_hello(out, len, &d), 0);
                ck_assert_uint_eq(d.profile, m.profile);
                ck_assert_uint_eq(d.id_len, idl);
                ck_assert(memcmp(d.device_id, cases[i].id, idl) == 0);
                ck_assert_msg(d.device_id[idl] == '\0', "case %zu: decoded id not terminated", i);
                ck_assert(memcmp(d.session_id, m.session_id, 16) == 0);
                ck_assert(d.epoch == cases[i].epoch);
                ck_assert_int_eq(wire_frame_type(out, len), SV_MSG_HELLO);

                /* Every capacity short of the frame. */
                for (size_t cap = 0; cap < len; cap++) {
                        size_t got = 12345;

                        ck_assert_msg(wire_encode_hello(&m, out, cap, &got) == -ENOBUFS, "cap %zu", cap);
                        ck_assert_uint_eq(got, 12345);
                }
        }
}
END_TEST

START_TEST(test_hello_encode_invalid) {
        struct msg_hello m = { .profile = SV_PROFILE_HARDENED, .id_len = 3 };
        uint8_t out[SV_HELLO_FRAME_MAX];
        size_t len;

        memcpy(m.device_id, "abc", 3);
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), 0);
        m.profile = 0;
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), -EINVAL);
        m.profile = 3;
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), -EINVAL);
        m.profile = SV_PROFILE_PAPER;
        m.id_len = 0;
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), -EINVAL);
        m.id_len = 65;
        memset(m.device_id, 'x', 65);
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), -EINVAL);
        m.id_len = 3;
        memcpy(m.device_id, "a b", 3);
        ck_assert_int_eq(wire_encode_hello(&m, out, sizeof out, &len), -EINVAL);
}
END_TEST

START_TEST(test_challenge_round_trip) {
        static const struct {
                uint16_t n;
                uint8_t p;
                uint16_t first, step;
        } cases[] = {
                { 8, 1, 7, 0 },
                { 128, 64, 0, 2 },
                { 4096, 64, 4095 - 63 * 64, 64 },
                { 4096, 1, 0x0102, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct msg_challenge m = { .c1 = { .p = cases[i].p } }, d;
                struct vault_params v;
                uint8_t out[SV_CHALLENGE_FRAME_MAX], want[SV_CHALLENGE_FRAME_MAX];
                size_t len = 0, body = 16 + 1 + 2u * cases[i].p;

                for (int k = 0; k < 16; k++)
                        m.r1[k] = (uint8_t) (0x10 + k);
                for (unsigned k = 0; k < cases[i].p; k++)
                        m.c1.idx[k] = (uint16_t) (cases[i].first + k * cases[i].step);
                want[0] = 1;
                want[1] = 2;
                want[2] = (uint8_t) (body >> 8);
                want[3] = (uint8_t) body;
                memcpy(want + 4, m.r1, 16);
                want[20] = cases[i].p;
                for (unsigned k = 0; k < cases[i].p; k++)
                        be16_put(want + 21 + 2 * k, m.c1.idx[k]);

                ck_assert_int_eq(wire_encode_challenge(&m, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, 4 + body);
                ck_assert_msg(memcmp(out, want, len) == 0, "case %zu: %s", i, unit_hex(out, len));
                v = unit_params("c", SV_PROFILE_HARDENED, cases[i].n, 16, cases[i].p, 0);
                ck_assert_int_eq(wire_decode_challenge(out, len, &v, &d), 0);
                ck_assert(memcmp(d.r1, m.r1, 16) == 0);
                ck_assert_uint_eq(d.c1.p, cases[i].p);
                for (unsigned k = 0; k < cases[i].p; k++)
                        ck_assert_uint_eq(d.c1.idx[k], m.c1.idx[k]);
                /* The receiver's own p and n decide: another p or a smaller n is refused. */
                if (cases[i].p > 1) {
                        v.p = (uint8_t) (cases[i].p - 1);
                        ck_assert_int_eq(wire_decode_challenge(out, len, &v, &d), -EBADMSG);
                }
                v.p = (uint8_t) (cases[i].p + 1);
                ck_assert_int_eq(wire_decode_challenge(out, len, &v, &d), -EBADMSG);
                v.p = cases[i].p;
                v.n = m.c1.idx[cases[i].p - 1];
                ck_assert_int_eq(wire_decode_challenge(out, len, &v, &d), -EBADMSG);
                for (size_t cap = 0; cap < len; cap++)
                        ck_assert_int_eq(wire_encode_challenge(&m, out, cap, &len), -ENOBUFS);
        }
}
END_TEST

START_TEST(test_challenge_encode_invalid) {
        struct msg_challenge m = { .c1 = { .p = 0 } };
        uint8_t out[SV_FRAME_MAX];
        size_t len;

        ck_assert_int_eq(wire_encode_challenge(&m, out, sizeof out, &len), -EINVAL);
        m.c1.p = 65;
        ck_assert_int_eq(wire_encode_challenge(&m, out, sizeof out, &len), -EINVAL);
}
END_TEST

START_TEST(test_sealed_round_trip) {
        static const struct {
                uint8_t type;
                size_t body;
        } cases[] = {
                { SV_MSG_RESPONSE, 81 + 2 * 1 },
                { SV_MSG_RESPONSE, 81 + 2 * 64 },
                { SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN },
                { SV_MSG_COMMIT, SV_COMMIT_BODY_LEN },
                { SV_MSG_RESPONSE, SV_BODY_MAX },
        };
        uint8_t body[SV_BODY_MAX + 1], out[SV_FRAME_MAX + 1];

        for (size_t i = 0; i < sizeof body; i++)
                body[i] = (uint8_t) (i * 7 + 3);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const uint8_t *got = NULL;
                size_t len = 0;

                ck_assert_int_eq(wire_encode_sealed(cases[i].type, body, cases[i].body, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, 4 + cases[i].body);
                ck_assert_uint_eq(out[0], 1);
                ck_assert_uint_eq(out[1], cases[i].type);
                ck_assert_uint_eq(be16_get(out + 2), cases[i].body);
                ck_assert(memcmp(out + 4, body, cases[i].body) == 0);
                ck_assert_int_eq(wire_decode_sealed(out, len, cases[i].type, cases[i].body, &got), 0);
                ck_assert_ptr_eq(got, out + 4);
                /* The exact size is the receiver's, not the sender's. */
                ck_assert_int_eq(wire_decode_sealed(out, len, cases[i].type, cases[i].body - 1, &got), -EBADMSG);
                ck_assert_int_eq(wire_decode_sealed(out, len, cases[i].type, cases[i].body + 1, &got), -EBADMSG);
                ck_assert_int_eq(wire_decode_sealed(out, len, cases[i].type, 0, &got), -EINVAL);
                ck_assert_int_eq(wire_decode_sealed(out, len, (uint8_t) (cases[i].type + 1), cases[i].body, &got), -EPROTO);
                ck_assert_int_eq(wire_encode_sealed(cases[i].type, body, cases[i].body, out, len - 1, &len), -ENOBUFS);
        }
        {
                size_t len;

                ck_assert_int_eq(wire_encode_sealed(SV_MSG_RESPONSE, body, SV_BODY_MAX + 1, out, sizeof out, &len), -EMSGSIZE);
        }
}
END_TEST

START_TEST(test_response_pt_round_trip) {
        static const struct {
                uint16_t n;
                uint8_t p;
        } cases[] = { { 8, 1 }, { 128, 64 }, { 13, 6 } };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct msg_response m = { .c2 = { .p = cases[i].p } }, d;
                uint8_t out[SV_RESPONSE_PT_MAX];
                size_t len = 0;

                for (int k = 0; k < 16; k++) {
                        m.r1[k] = (uint8_t) k;
                        m.r2[k] = (uint8_t) (0x80 + k);
                }
                for (int k = 0; k < 32; k++)
                        m.t1[k] = (uint8_t) (0x40 + k);
                for (unsigned k = 0; k < cases[i].p; k++)
                        m.c2.idx[k] = (uint16_t) (cases[i].n - cases[i].p + k);
                ck_assert_int_eq(wire_encode_response_pt(&m, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, 65 + 2u * cases[i].p);
                /* r1 || t1 || r2 || u8 p || u16 indices */
                ck_assert(memcmp(out, m.r1, 16) == 0);
                ck_assert(memcmp(out + 16, m.t1, 32) == 0);
                ck_assert(memcmp(out + 48, m.r2, 16) == 0);
                ck_assert_uint_eq(out[64], cases[i].p);
                ck_assert_uint_eq(be16_get(out + 65), m.c2.idx[0]);
                ck_assert_int_eq(wire_decode_response_pt(out, len, cases[i].n, cases[i].p, &d), 0);
                ck_assert(memcmp(d.r1, m.r1, 16) == 0 && memcmp(d.t1, m.t1, 32) == 0 && memcmp(d.r2, m.r2, 16) == 0);
                ck_assert_uint_eq(d.c2.p, m.c2.p);
                ck_assert(memcmp(d.c2.idx, m.c2.idx, 2u * m.c2.p) == 0);
                for (size_t l = 0; l < len; l++)
                        ck_assert_int_eq(wire_decode_response_pt(out, l, cases[i].n, cases[i].p, &d), -EBADMSG);
                ck_assert_int_eq(wire_decode_response_pt(out, len, (uint16_t) (cases[i].n - 1), cases[i].p, &d), -EBADMSG);
        }
}
END_TEST

START_TEST(test_confirm_pt_round_trip) {
        struct msg_confirm m, d;
        uint8_t out[SV_CONFIRM_PT_LEN + 1];
        size_t len = 0;

        for (int k = 0; k < 16; k++)
                m.r2[k] = (uint8_t) (0xf0 + k);
        for (int k = 0; k < 32; k++)
                m.t2[k] = (uint8_t) k;
        ck_assert_int_eq(wire_encode_confirm_pt(&m, out, sizeof out, &len), 0);
        ck_assert_uint_eq(len, SV_CONFIRM_PT_LEN);
        ck_assert(memcmp(out, m.r2, 16) == 0 && memcmp(out + 16, m.t2, 32) == 0);
        ck_assert_int_eq(wire_decode_confirm_pt(out, len, &d), 0);
        ck_assert(memcmp(&d, &m, sizeof m) == 0);
        ck_assert_int_eq(wire_decode_confirm_pt(out, len + 1, &d), -EBADMSG);
        ck_assert_int_eq(wire_decode_confirm_pt(out, len - 1, &d), -EBADMSG);
        ck_assert_int_eq(wire_encode_confirm_pt(&m, out, len - 1, &len), -ENOBUFS);
}
END_TEST

/*
 * STYLE.md: outputs are written only on success. A plaintext decoder that fails half-way
 * must not leave r1/t1/r2 (secrets) in the caller's struct either.
 */
START_TEST(test_response_pt_writes_only_on_success) {
        struct msg_response m = { .c2 = { .p = 2, .idx = { 3, 1 } } }, d;       /* unsorted */
        uint8_t out[SV_RESPONSE_PT_FIXED + 2 * SV_INDEX_LEN], before[sizeof d];
        size_t len;

        memset(m.t1, 0x77, sizeof m.t1);
        ck_assert_int_eq(wire_encode_response_pt(&m, out, sizeof out, &len), 0);
        memset(&d, 0xee, sizeof d);
        memcpy(before, &d, sizeof d);
        ck_assert_int_eq(wire_decode_response_pt(out, len, 8, 2, &d), -EBADMSG);
        ck_assert_msg(memcmp(&d, before, sizeof d) == 0,
                      "wire_decode_response_pt wrote its output on failure (t1 now %s)", unit_hex(d.t1, 8));
}
END_TEST

START_TEST(test_confirm_pt_writes_only_on_success) {
        struct msg_confirm c, d;
        uint8_t out[SV_CONFIRM_PT_LEN + 1], before[sizeof d];
        size_t len;

        memset(&c, 0x11, sizeof c);
        ck_assert_int_eq(wire_encode_confirm_pt(&c, out, sizeof out, &len), 0);
        out[len] = 0;
        memset(&d, 0xee, sizeof d);
        memcpy(before, &d, sizeof d);
        ck_assert_int_eq(wire_decode_confirm_pt(out, len + 1, &d), -EBADMSG);
        ck_assert_msg(memcmp(&d, before, sizeof d) == 0,
                      "wire_decode_confirm_pt wrote its output on failure (t2 now %s)", unit_hex(d.t2, 8));
}
END_TEST

START_TEST(test_error_round_trip) {
        for (uint8_t code = 1; code <= 4; code++) {
                uint8_t out[SV_ERROR_FRAME_LEN], got = 0;
                const uint8_t want[5] = { 1, 15, 0, 1, code };
                size_t len = 0;

                ck_assert_int_eq(wire_encode_error(code, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, 5);
                ck_assert(memcmp(out, want, 5) == 0);
                ck_assert_int_eq(wire_decode_error(out, len, &got), 0);
                ck_assert_uint_eq(got, code);
                ck_assert_int_eq(wire_frame_type(out, len), SV_MSG_ERROR);
                ck_assert_str_ne(wire_error_name(code), "unknown error");
                ck_assert_int_eq(wire_encode_error(code, out, 4, &len), -ENOBUFS);
        }
        {
                uint8_t out[8], got = 0x55;
                size_t len;
                const uint8_t zero[5] = { 1, 15, 0, 1, 0 }, five[5] = { 1, 15, 0, 1, 5 }, big[5] = { 1, 15, 0, 1, 0xff };

                ck_assert_int_eq(wire_encode_error(0, out, sizeof out, &len), -EINVAL);
                ck_assert_int_eq(wire_encode_error(5, out, sizeof out, &len), -EINVAL);
                ck_assert_int_eq(wire_decode_error(zero, 5, &got), -EBADMSG);
                ck_assert_int_eq(wire_decode_error(five, 5, &got), -EBADMSG);
                ck_assert_int_eq(wire_decode_error(big, 5, &got), -EBADMSG);
                ck_assert_uint_eq(got, 0x55);
                ck_assert_str_eq(wire_error_name(0), "unknown error");
                ck_assert_str_eq(wire_error_name(5), "unknown error");
        }
}
END_TEST

START_TEST(test_error_code_mapping) {
        static const struct {
                int err;
                uint8_t code;
        } cases[] = {
                { -EPROTONOSUPPORT, SV_ERR_VERSION },
                { -EACCES, SV_ERR_AUTH },
                { -EBUSY, SV_ERR_BUSY },
                { -EBADMSG, SV_ERR_PROTOCOL },
                { -EPROTO, SV_ERR_PROTOCOL },
                { -EMSGSIZE, SV_ERR_PROTOCOL },
                { -EINVAL, SV_ERR_PROTOCOL },
                { 0, SV_ERR_PROTOCOL },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                ck_assert_msg(wire_error_code(cases[i].err) == cases[i].code, "errno %d", cases[i].err);
}
END_TEST

START_TEST(test_header_decode) {
        static const struct {
                uint8_t h[4];
                size_t len;
                int want;
        } cases[] = {
                { { 1, 2, 0x04, 0x00 }, 4, 0 },                 /* exactly 1024 */
                { { 1, 2, 0x04, 0x01 }, 4, -EMSGSIZE },
                { { 1, 2, 0xff, 0xff }, 4, -EMSGSIZE },
                { { 1, 2, 0x00, 0x00 }, 4, 0 },
                { { 0, 2, 0x00, 0x00 }, 4, -EPROTONOSUPPORT },
                { { 2, 2, 0x00, 0x00 }, 4, -EPROTONOSUPPORT },
                { { 1, 2, 0x00, 0x00 }, 3, -EBADMSG },
                { { 1, 2, 0x00, 0x00 }, 0, -EBADMSG },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct wire_header h = { 0xaa, 0xbb, 0xcccc };
                uint8_t *copy = unit_dup(cases[i].h, cases[i].len);
                int r = wire_header_decode(copy, cases[i].len, &h);

                ck_assert_msg(r == cases[i].want, "case %zu: %d", i, r);
                if (r == 0) {
                        ck_assert_uint_eq(h.version, 1);
                        ck_assert_uint_eq(h.type, cases[i].h[1]);
                        ck_assert_uint_eq(h.length, be16_get(cases[i].h + 2));
                } else
                        ck_assert(h.version == 0xaa && h.type == 0xbb && h.length == 0xcccc);
                free(copy);
        }
}
END_TEST

/* ---- malformed input against decoders and state machines ------------------------------ */

enum msg {
        MSG_M1,
        MSG_M2,
        MSG_M3,
        MSG_M4,
        MSG_M5,
        MSG_ERROR,
        MSG_COUNT,
};

static const char *const msg_names[MSG_COUNT] = { "M1", "M2", "M3", "M4", "M5", "ERROR" };
static const uint8_t msg_types[MSG_COUNT] = { 1, 2, 3, 4, 5, 15 };

/* A real handshake, and each receiver's state machine just before its message arrives. */
struct fixture {
        uint8_t *keys;
        struct unit_hs h;
        struct hs_server srv_m1, srv_m3, srv_m5;
        struct hs_device dev_m2, dev_m4;
        uint8_t err[SV_ERROR_FRAME_LEN];
        size_t err_len;
};

static const struct {
        uint8_t profile;
        uint16_t n;
        uint8_t m, p;
        const char *id;
} configs[] = {
        { SV_PROFILE_HARDENED, 64, 16, 8, "wire-hardened" },
        { SV_PROFILE_PAPER, 13, 32, 6, "wire-paper" },
};

static void fixture_setup(struct fixture *fx, int config) {
        struct vault_params v = unit_params(configs[config].id, configs[config].profile, configs[config].n,
                                            configs[config].m, configs[config].p, 41);

        memset(fx, 0, sizeof *fx);
        fx->keys = malloc(vault_size(&v));
        ck_assert_ptr_nonnull(fx->keys);
        ck_assert_int_eq(crypto_random(fx->keys, vault_size(&v)), 0);
        unit_hs_init(&fx->h, &v, fx->keys, NULL, NULL, NULL);
        memcpy(&fx->srv_m1, &fx->h.srv, sizeof fx->srv_m1);
        unit_hs_run_to(&fx->h, UNIT_SERVER_CHALLENGE);
        memcpy(&fx->dev_m2, &fx->h.dev, sizeof fx->dev_m2);
        ck_assert_int_eq(unit_hs_step(&fx->h, UNIT_DEVICE_RESPOND), 0);
        memcpy(&fx->srv_m3, &fx->h.srv, sizeof fx->srv_m3);
        ck_assert_int_eq(unit_hs_step(&fx->h, UNIT_SERVER_RESPOND), 0);
        memcpy(&fx->dev_m4, &fx->h.dev, sizeof fx->dev_m4);
        ck_assert_int_eq(unit_hs_step(&fx->h, UNIT_DEVICE_CONFIRM), 0);
        memcpy(&fx->srv_m5, &fx->h.srv, sizeof fx->srv_m5);
        ck_assert_int_eq(unit_hs_step(&fx->h, UNIT_SERVER_COMMIT), 0);
        ck_assert_int_eq(wire_encode_error(SV_ERR_AUTH, fx->err, sizeof fx->err, &fx->err_len), 0);
}

static void fixture_free(struct fixture *fx) {
        unit_hs_free(&fx->h);
        free(fx->keys);
}

static void fixture_frame(const struct fixture *fx, enum msg msg, const uint8_t **ret, size_t *ret_len) {
        switch (msg) {
        case MSG_M1: *ret = fx->h.m1, *ret_len = fx->h.m1_len; return;
        case MSG_M2: *ret = fx->h.m2, *ret_len = fx->h.m2_len; return;
        case MSG_M3: *ret = fx->h.m3, *ret_len = fx->h.m3_len; return;
        case MSG_M4: *ret = fx->h.m4, *ret_len = fx->h.m4_len; return;
        case MSG_M5: *ret = fx->h.m5, *ret_len = fx->h.m5_len; return;
        default: *ret = fx->err, *ret_len = fx->err_len; return;
        }
}

/* The pure decoder for msg, on an exact-length heap copy. */
static int feed_decoder(const struct fixture *fx, enum msg msg, const uint8_t *frame, size_t len) {
        const struct vault_params *v = &fx->h.params;
        uint8_t *copy = unit_dup(frame, len), code;
        struct msg_hello hello;
        struct msg_challenge chal;
        const uint8_t *body;
        int r = -EINVAL;

        switch (msg) {
        case MSG_M1: r = wire_decode_hello(copy, len, &hello); break;
        case MSG_M2: r = wire_decode_challenge(copy, len, v, &chal); break;
        case MSG_M3: r = wire_decode_sealed(copy, len, SV_MSG_RESPONSE, vault_body_len(SV_MSG_RESPONSE, v), &body); break;
        case MSG_M4: r = wire_decode_sealed(copy, len, SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN, &body); break;
        case MSG_M5: r = wire_decode_sealed(copy, len, SV_MSG_COMMIT, SV_COMMIT_BODY_LEN, &body); break;
        case MSG_ERROR: r = wire_decode_error(copy, len, &code); break;
        default: break;
        }
        free(copy);
        return r;
}

/*
 * The step that receives msg, on a copy of the receiver's state; any failure must leave
 * that state byte for byte as it was (an ERROR that decodes sets only peer_error).
 */
static int feed_step(const struct fixture *fx, enum msg msg, const uint8_t *frame, size_t len, const char *what) {
        size_t size = vault_size(&fx->h.params);
        uint8_t *copy = unit_dup(frame, len), *next = malloc(size), out[SV_FRAME_MAX];
        struct hs_server srv;
        struct hs_device dev;
        const void *before = NULL, *after = NULL;
        size_t state_size = 0, out_len = 0;
        int r = -EINVAL;

        ck_assert_ptr_nonnull(next);
        memset(next, 0xa5, size);
        switch (msg) {
        case MSG_M1:
        case MSG_M3:
        case MSG_M5:
                before = msg == MSG_M1 ? &fx->srv_m1 : msg == MSG_M3 ? &fx->srv_m3 : &fx->srv_m5;
                memcpy(&srv, before, sizeof srv);
                if (msg == MSG_M1)
                        r = hs_server_hello(&srv, copy, len, NULL);
                else if (msg == MSG_M3)
                        r = hs_server_respond(&srv, copy, len, next, out, sizeof out, &out_len);
                else
                        r = hs_server_commit(&srv, copy, len);
                after = &srv;
                state_size = sizeof srv;
                break;
        case MSG_M2:
        case MSG_M4:
        case MSG_ERROR:
                before = msg == MSG_M4 ? &fx->dev_m4 : &fx->dev_m2;
                memcpy(&dev, before, sizeof dev);
                if (msg == MSG_M4)
                        r = hs_device_confirm(&dev, copy, len, next, out, sizeof out, &out_len);
                else
                        r = hs_device_respond(&dev, copy, len, out, sizeof out, &out_len);
                if (r == -ECONNREFUSED) {
                        unit_assert(dev.peer_error != 0, "%s: refused without peer_error", what);
                        dev.peer_error = 0;
                }
                after = &dev;
                state_size = sizeof dev;
                break;
        default:
                break;
        }
        if (r < 0) {
                unit_assert(memcmp(before, after, state_size) == 0, "%s %s: failed step (%d) changed the state",
                            msg_names[msg], what, r);
                for (size_t i = 0; i < size; i++)
                        unit_assert(next[i] == 0xa5, "%s %s: failed step wrote the next vault", msg_names[msg], what);
        }
        free(copy);
        free(next);
        return r;
}

static void expect(const struct fixture *fx, enum msg msg, const uint8_t *frame, size_t len,
                   int want_decoder, int want_step, const char *what) {
        int r;

        r = feed_decoder(fx, msg, frame, len);
        unit_assert(r == want_decoder, "%s %s (len %zu): decoder %d, want %d", msg_names[msg], what, len, r, want_decoder);
        r = feed_step(fx, msg, frame, len, what);
        unit_assert(r == want_step, "%s %s (len %zu): step %d, want %d", msg_names[msg], what, len, r, want_step);
}

static int valid_step_result(enum msg msg) {
        return msg == MSG_ERROR ? -ECONNREFUSED : 0;
}

/* Every truncation of every message is -EBADMSG for the decoder and for the step. */
START_TEST(test_truncations) {
        struct fixture fx;

        fixture_setup(&fx, _i);
        for (int msg = 0; msg < MSG_COUNT; msg++) {
                const uint8_t *frame;
                size_t len;

                fixture_frame(&fx, msg, &frame, &len);
                for (size_t l = 0; l < len; l++)
                        expect(&fx, msg, frame, l, -EBADMSG, -EBADMSG, "truncated");
                /* The fixture itself is sound: the whole frame is accepted. */
                expect(&fx, msg, frame, len, 0, valid_step_result(msg), "intact");
        }
        fixture_free(&fx);
}
END_TEST

static const struct header_case {
        const char *name;
        int version;            /* -1: keep */
        int type;               /* -1: keep */
        int length;             /* -1: keep the declared length, else set it */
        int length_delta;       /* added to the declared length */
        int grow;               /* bytes appended (> 0) or cut (< 0) */
        bool header_only;       /* cut the frame to its header */
        int want;
} header_cases[] = {
        { "version 0", 0, -1, -1, 0, 0, false, -EPROTONOSUPPORT },
        { "version 2", 2, -1, -1, 0, 0, false, -EPROTONOSUPPORT },
        { "version 255", 255, -1, -1, 0, 0, false, -EPROTONOSUPPORT },
        { "type 0", -1, 0, -1, 0, 0, false, -EPROTO },
        { "type 6", -1, 6, -1, 0, 0, false, -EPROTO },
        { "type 14", -1, 14, -1, 0, 0, false, -EPROTO },
        { "type 16", -1, 16, -1, 0, 0, false, -EPROTO },
        { "type 255", -1, 255, -1, 0, 0, false, -EPROTO },
        { "declared length +1", -1, -1, -1, 1, 0, false, -EBADMSG },
        { "declared length -1", -1, -1, -1, -1, 0, false, -EBADMSG },
        { "declared and real length +1", -1, -1, -1, 1, 1, false, -EBADMSG },
        { "declared and real length -1", -1, -1, -1, -1, -1, false, -EBADMSG },
        { "declared length 0, header only", -1, -1, 0, 0, 0, true, -EBADMSG },
        { "declared length 1025", -1, -1, 1025, 0, 0, false, -EMSGSIZE },
        { "declared length 1025 with that body", -1, -1, 1025, 0, 1025, true, -EMSGSIZE },
        { "declared length 0x8000", -1, -1, 0x8000, 0, 0, false, -EMSGSIZE },
        { "declared length 0xffff", -1, -1, 0xffff, 0, 0, false, -EMSGSIZE },
        { "trailing byte", -1, -1, -1, 0, 1, false, -EBADMSG },
        { "trailing 100 bytes", -1, -1, -1, 0, 100, false, -EBADMSG },
};

/* Applies a header case to a copy of frame; returns the new length. */
static size_t apply_header_case(const struct header_case *c, const uint8_t *frame, size_t len, uint8_t *out) {
        size_t new_len = c->header_only ? SV_HEADER_LEN : len;
        int declared = be16_get(frame + 2);

        memset(out, 0, SV_FRAME_MAX + 200);
        memcpy(out, frame, len);
        if (c->version >= 0)
                out[0] = (uint8_t) c->version;
        if (c->type >= 0)
                out[1] = (uint8_t) c->type;
        if (c->length >= 0)
                declared = c->length;
        declared += c->length_delta;
        be16_put(out + 2, (uint16_t) declared);
        if (c->grow > 0)
                memset(out + new_len, 0, (size_t) c->grow);     /* appended zero bytes */
        new_len = (size_t) ((long) new_len + c->grow);
        return new_len;
}

START_TEST(test_header_table) {
        struct fixture fx;
        uint8_t buf[SV_FRAME_MAX + 200];

        fixture_setup(&fx, _i);
        for (int msg = 0; msg < MSG_COUNT; msg++) {
                const uint8_t *frame;
                size_t len;

                fixture_frame(&fx, msg, &frame, &len);
                for (size_t c = 0; c < ARRAY_SIZE(header_cases); c++) {
                        size_t l = apply_header_case(&header_cases[c], frame, len, buf);

                        expect(&fx, msg, buf, l, header_cases[c].want, header_cases[c].want, header_cases[c].name);
                }
                /* Every other message type, where the receiver expects this one. */
                for (uint8_t t = 1; t <= 5; t++) {
                        char what[32];

                        if (t == msg_types[msg])
                                continue;
                        memcpy(buf, frame, len);
                        buf[1] = t;
                        snprintf(what, sizeof what, "type %u", t);
                        /* The device at M2 does expect type 2: the ERROR body then has the wrong size. */
                        expect(&fx, msg, buf, len, -EPROTO, msg == MSG_ERROR && t == SV_MSG_CHALLENGE ? -EBADMSG : -EPROTO,
                               what);
                }
                /* An ERROR where the decoder wants something else; the device treats it as the
                 * server's answer only if it is a well-formed ERROR. */
                if (msg != MSG_ERROR) {
                        int want = msg == MSG_M2 || msg == MSG_M4 ? -EBADMSG : -EPROTO;

                        memcpy(buf, frame, len);
                        buf[1] = SV_MSG_ERROR;
                        expect(&fx, msg, buf, len, -EPROTO, want, "type 15");
                }
                expect(&fx, msg, frame, len, 0, valid_step_result(msg), "intact");
        }
        fixture_free(&fx);
}
END_TEST

/* A hello frame from parts, with a consistent header unless told otherwise. */
static size_t make_hello(uint8_t *out, uint8_t profile, uint8_t id_len, const char *id, size_t id_bytes) {
        size_t body = 2 + id_bytes + 16 + 8;

        out[0] = 1;
        out[1] = SV_MSG_HELLO;
        be16_put(out + 2, (uint16_t) body);
        out[4] = profile;
        out[5] = id_len;
        memcpy(out + 6, id, id_bytes);
        memset(out + 6 + id_bytes, 0x5e, 16);
        be64_put(out + 6 + id_bytes + 16, 41);
        return 4 + body;
}

START_TEST(test_hello_fields) {
        char id65[66];
        const struct {
                const char *name;
                uint8_t profile;
                int id_len;             /* -1: the length of id */
                const char *id;
                int want;
        } cases[] = {
                { "valid", SV_PROFILE_HARDENED, -1, "wire-hardened", 0 },
                { "profile 0", 0, -1, "wire-hardened", -EBADMSG },
                { "profile 3", 3, -1, "wire-hardened", -EBADMSG },
                { "profile 255", 255, -1, "wire-hardened", -EBADMSG },
                { "id_len 0", SV_PROFILE_HARDENED, -1, "", -EBADMSG },
                { "id_len 65", SV_PROFILE_HARDENED, -1, id65, -EBADMSG },
                { "space in id", SV_PROFILE_HARDENED, -1, "wire hardened", -EBADMSG },
                { "slash in id", SV_PROFILE_HARDENED, -1, "wire/hardened", -EBADMSG },
                { "NUL in id", SV_PROFILE_HARDENED, 13, "wire\0ardened", -EBADMSG },
                { "high byte in id", SV_PROFILE_HARDENED, -1, "wire\xe9hardened", -EBADMSG },
                { "id_len past the id", SV_PROFILE_HARDENED, 20, "wire-hardened", -EBADMSG },
                { "id_len short of the id", SV_PROFILE_HARDENED, 5, "wire-hardened", -EBADMSG },
                { "id_len 255", SV_PROFILE_HARDENED, 255, "wire-hardened", -EBADMSG },
        };
        struct fixture fx;

        memset(id65, 'q', 65);
        id65[65] = '\0';
        fixture_setup(&fx, 0);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint8_t buf[SV_FRAME_MAX];
                size_t idb = cases[i].id_len == 13 ? 13 : strlen(cases[i].id);
                uint8_t idl = (uint8_t) (cases[i].id_len < 0 ? (int) idb : cases[i].id_len);
                size_t len = make_hello(buf, cases[i].profile, idl, cases[i].id, idb);
                struct msg_hello m;

                expect(&fx, MSG_M1, buf, len, cases[i].want, cases[i].want, cases[i].name);
                if (cases[i].want == 0) {
                        ck_assert_int_eq(wire_decode_hello(buf, len, &m), 0);
                        ck_assert_str_eq(m.device_id, "wire-hardened");
                        ck_assert(m.epoch == 41);
                }
        }
        fixture_free(&fx);
}
END_TEST

/* A challenge frame r1 || u8 count || indices, consistent header. */
static size_t make_challenge(uint8_t *out, uint8_t count_byte, const uint16_t *idx, unsigned nidx) {
        size_t body = 16 + 1 + 2 * (size_t) nidx;

        out[0] = 1;
        out[1] = SV_MSG_CHALLENGE;
        be16_put(out + 2, (uint16_t) body);
        memset(out + 4, 0x3c, 16);
        out[20] = count_byte;
        for (unsigned i = 0; i < nidx; i++)
                be16_put(out + 21 + 2 * i, idx[i]);
        return 4 + body;
}

/* Config 0: n = 64, p = 8. */
START_TEST(test_challenge_fields) {
        const struct {
                const char *name;
                uint8_t count;
                unsigned nidx;
                uint16_t idx[9];
                int want;
        } cases[] = {
                { "valid", 8, 8, { 0, 1, 2, 3, 4, 5, 6, 63 }, 0 },
                { "count 7, 8 indices", 7, 8, { 0, 1, 2, 3, 4, 5, 6, 7 }, -EBADMSG },
                { "count 9, 8 indices", 9, 8, { 0, 1, 2, 3, 4, 5, 6, 7 }, -EBADMSG },
                { "count 0, 8 indices", 0, 8, { 0, 1, 2, 3, 4, 5, 6, 7 }, -EBADMSG },
                { "count 255, 8 indices", 255, 8, { 0, 1, 2, 3, 4, 5, 6, 7 }, -EBADMSG },
                { "count 7, 7 indices", 7, 7, { 0, 1, 2, 3, 4, 5, 6 }, -EBADMSG },
                { "count 9, 9 indices", 9, 9, { 0, 1, 2, 3, 4, 5, 6, 7, 8 }, -EBADMSG },
                { "duplicate", 8, 8, { 0, 1, 2, 3, 3, 5, 6, 7 }, -EBADMSG },
                { "duplicate at the end", 8, 8, { 0, 1, 2, 3, 4, 5, 7, 7 }, -EBADMSG },
                { "unsorted", 8, 8, { 0, 1, 2, 4, 3, 5, 6, 7 }, -EBADMSG },
                { "descending", 8, 8, { 7, 6, 5, 4, 3, 2, 1, 0 }, -EBADMSG },
                { "index == n", 8, 8, { 0, 1, 2, 3, 4, 5, 6, 64 }, -EBADMSG },
                { "index 0xffff", 8, 8, { 0, 1, 2, 3, 4, 5, 6, 0xffff }, -EBADMSG },
                { "index 0x8000", 8, 8, { 0, 1, 2, 3, 4, 5, 6, 0x8000 }, -EBADMSG },
        };
        struct fixture fx;

        fixture_setup(&fx, 0);
        ck_assert_uint_eq(fx.h.params.n, 64);
        ck_assert_uint_eq(fx.h.params.p, 8);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint8_t buf[SV_FRAME_MAX];
                size_t len = make_challenge(buf, cases[i].count, cases[i].idx, cases[i].nidx);
                int want_step = cases[i].want;

                expect(&fx, MSG_M2, buf, len, cases[i].want, want_step, cases[i].name);
        }
        fixture_free(&fx);
}
END_TEST

START_TEST(test_error_fields) {
        struct fixture fx;

        fixture_setup(&fx, 0);
        for (unsigned code = 0; code < 256; code++) {
                uint8_t buf[5] = { 1, SV_MSG_ERROR, 0, 1, (uint8_t) code };
                bool ok = code >= 1 && code <= 4;
                char what[32];

                snprintf(what, sizeof what, "code %u", code);
                expect(&fx, MSG_ERROR, buf, sizeof buf, ok ? 0 : -EBADMSG, ok ? -ECONNREFUSED : -EBADMSG, what);
        }
        fixture_free(&fx);
}
END_TEST

static Suite *wire_suite(void) {
        Suite *s = suite_create("wire");
        TCase *tc = tcase_create("codec");

        tcase_add_test(tc, test_hello_round_trip);
        tcase_add_test(tc, test_hello_encode_invalid);
        tcase_add_test(tc, test_challenge_round_trip);
        tcase_add_test(tc, test_challenge_encode_invalid);
        tcase_add_test(tc, test_sealed_round_trip);
        tcase_add_test(tc, test_response_pt_round_trip);
        tcase_add_test(tc, test_confirm_pt_round_trip);
        tcase_add_test(tc, test_response_pt_writes_only_on_success);
        tcase_add_test(tc, test_confirm_pt_writes_only_on_success);
        tcase_add_test(tc, test_error_round_trip);
        tcase_add_test(tc, test_error_code_mapping);
        tcase_add_test(tc, test_header_decode);
        suite_add_tcase(s, tc);

        tc = tcase_create("malformed");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, test_truncations, 0, (int) ARRAY_SIZE(configs));
        tcase_add_loop_test(tc, test_header_table, 0, (int) ARRAY_SIZE(configs));
        tcase_add_test(tc, test_hello_fields);
        tcase_add_test(tc, test_challenge_fields);
        tcase_add_test(tc, test_error_fields);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(wire_suite());
}
