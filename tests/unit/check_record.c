/* SPDX-License-Identifier: MIT */

/*
 * common/record: the data channel of protocol §11: every record of extensions.txt, the
 * header bounds, and the attacks a man in the middle runs on a channel (replay, reorder,
 * drop, reflection, truncation, bit flips, records after CLOSE) and on a leaked key.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "handshake.h"
#include "record.h"
#include "unit.h"
#include "unit-kat.h"

/* Field by field: struct copies need not copy padding. */
static bool chain_eq(const struct record_chain *x, const struct record_chain *y) {
        return x->state == y->state && x->seq == y->seq && memcmp(x->a, y->a, sizeof x->a) == 0;
}

/* ---- known answers ---------------------------------------------------------------- */

static void expect_bytes(const char *name, const char *what, const struct kat_bytes *want,
                         const uint8_t *got, size_t got_len) {
        unit_assert(want->len == got_len && memcmp(want->data, got, got_len) == 0,
                    "%s: %s is %s", name, what, unit_hex(got, got_len));
}

/*
 * S of the case, from the values the file lists (§4, §10): HKDF-Extract(TH4, t || Z) with
 * t = t1 xor t2 and Z empty for kex none. Checked against the file's k5 (both profiles) and
 * session key (hardened: HKDF-Expand(S, "sv1 session"); paper: t), so that a wrong S cannot
 * hide behind a wrong secret.
 */
static void case_s(const struct kat_case *c, uint8_t s[32]) {
        struct kat_bytes th4 = unit_kat_bytes(c, "th4"), t1 = unit_kat_bytes(c, "t1"), t2 = unit_kat_bytes(c, "t2");
        struct kat_bytes k5 = unit_kat_bytes(c, "k5"), sk = unit_kat_bytes(c, "session_key"), z = { 0 };
        const char *name = kat_get(c, "name"), *kex = kat_get(c, "kex"), *profile = kat_get(c, "profile");
        uint8_t ikm[64], out[32];
        size_t ikm_len = 32;

        ck_assert_ptr_nonnull(kex);
        ck_assert_ptr_nonnull(profile);
        ck_assert_uint_eq(th4.len, 32);
        ck_assert_uint_eq(t1.len, 32);
        ck_assert_uint_eq(t2.len, 32);
        for (int i = 0; i < 32; i++)
                ikm[i] = t1.data[i] ^ t2.data[i];
        if (strcmp(kex, "x25519") == 0) {
                z = unit_kat_bytes(c, "z");
                ck_assert_uint_eq(z.len, 32);
                memcpy(ikm + 32, z.data, 32);
                ikm_len = 64;
        } else
                ck_assert_str_eq(kex, "none");
        ck_assert_int_eq(crypto_hkdf_extract(th4.data, 32, ikm, ikm_len, s), 0);

        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 k5", out, 32), 0);
        expect_bytes(name, "k5 from S", &k5, out, 32);
        if (strcmp(profile, "hardened") == 0) {
                ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 session", out, 32), 0);
                expect_bytes(name, "session key from S", &sk, out, 32);
        } else
                expect_bytes(name, "session key (t)", &sk, ikm, 32);
        free(th4.data);
        free(t1.data);
        free(t2.data);
        free(k5.data);
        free(sk.data);
        free(z.data);
}

/* One direction of a case: its secret, every DATA record and the CLOSE, sealed and opened. */
static unsigned check_direction(const struct kat_case *c, const uint8_t s[32], enum record_dir dir) {
        const char *name = kat_get(c, "name"), *tag = dir == RECORD_C2S ? "c2s" : "s2c";
        char key_secret[32], key_data[32], key_rec[32], key_close[32];
        struct kat_bytes secret, close, *data, *recs;
        size_t n_data, n_recs, len;
        struct record_chain tx, rx;
        uint8_t a0[32], a0_copy[32], frame[RECORD_FRAME_MAX], payload[RECORD_PAYLOAD_MAX];

        snprintf(key_secret, sizeof key_secret, "%s_secret", tag);
        snprintf(key_data, sizeof key_data, "data_%s", tag);
        snprintf(key_rec, sizeof key_rec, "rec_%s", tag);
        snprintf(key_close, sizeof key_close, "close_%s", tag);
        secret = unit_kat_bytes(c, key_secret);
        close = unit_kat_bytes(c, key_close);
        unit_kat_list(c, key_data, &data, &n_data);
        unit_kat_list(c, key_rec, &recs, &n_recs);
        ck_assert_uint_eq(n_data, n_recs);

        ck_assert_int_eq(record_secret(s, dir, a0), 0);
        expect_bytes(name, key_secret, &secret, a0, 32);
        memcpy(a0_copy, a0, sizeof a0);
        record_init(&tx, a0);
        ck_assert(unit_is_zero(a0, sizeof a0));              /* taken over */
        record_init(&rx, a0_copy);

        for (size_t i = 0; i < n_data; i++) {
                char what[48];
                int type;

                snprintf(what, sizeof what, "%s record %zu", tag, i);
                ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, data[i].data, data[i].len, frame, sizeof frame, &len), 0);
                expect_bytes(name, what, &recs[i], frame, len);
                type = record_open(&rx, recs[i].data, recs[i].len, payload, sizeof payload, &len);
                unit_assert(type == SV_MSG_DATA, "%s: %s does not open: %d", name, what, type);
                expect_bytes(name, what, &data[i], payload, len);
        }
        ck_assert_int_eq(record_seal(&tx, SV_MSG_CLOSE, NULL, 0, frame, sizeof frame, &len), 0);
        expect_bytes(name, key_close, &close, frame, len);
        ck_assert_int_eq(record_open(&rx, close.data, close.len, NULL, 0, &len), SV_MSG_CLOSE);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(tx.state, RECORD_CLOSED);
        ck_assert_int_eq(rx.state, RECORD_CLOSED);
        ck_assert(unit_is_zero(tx.a, sizeof tx.a) && unit_is_zero(rx.a, sizeof rx.a));

        free(secret.data);
        free(close.data);
        kat_bytes_free_list(data, n_data);
        kat_bytes_free_list(recs, n_recs);
        return (unsigned) n_recs + 1;
}

/* One case of extensions.txt for test_vectors: both directions; userdata counts the records. */
static int record_vector(const struct kat_case *c, void *userdata) {
        unsigned *records = userdata;
        uint8_t s[32];

        case_s(c, s);
        *records += check_direction(c, s, RECORD_C2S);
        *records += check_direction(c, s, RECORD_S2C);
        return 0;
}

START_TEST(test_vectors) {
        unsigned records = 0;
        int cases;

        cases = kat_each("extensions.txt", record_vector, &records);
        /* Four cases, 16 records with the CLOSEs: an empty or truncated file must not pass. */
        ck_assert_int_ge(cases, 4);
        ck_assert_uint_ge(records, 16);
}
END_TEST

/* ---- the secrets from the handshake ------------------------------------------------ */

static unsigned kat_unsigned(const struct kat_case *c, const char *key) {
        const char *v = kat_get(c, key);
        char *end;
        unsigned long long x;

        ck_assert_ptr_nonnull(v);
        x = strtoull(v, &end, 10);
        ck_assert(*v && !*end);
        return (unsigned) x;
}

static struct challenge kat_challenge(const struct kat_case *c, const char *key) {
        const char *v = kat_get(c, key);
        uint16_t idx[SV_P_MAX];
        unsigned p = 0;

        ck_assert_ptr_nonnull(v);
        while (*v) {
                char *end;

                ck_assert_uint_lt(p, SV_P_MAX);
                idx[p++] = (uint16_t) strtoul(v, &end, 10);
                ck_assert(end != v);
                v = *end == ',' ? end + 1 : end;
        }
        return unit_challenge(p, idx);
}

static void replay_field(const struct kat_case *c, struct unit_replay *r, enum hs_value what, const char *key) {
        struct kat_bytes b = unit_kat_bytes(c, key);

        unit_replay_bytes(r, what, b.data, b.len);
        free(b.data);
}

struct secrets_count {
        unsigned cases, x25519;
};

/* One case of extensions.txt for test_handshake_secrets; userdata counts the cases, and those with x25519. */
static int secrets_vector(const struct kat_case *c, void *userdata) {
        struct secrets_count *n = userdata;
        const char *name = kat_get(c, "name"), *kex = kat_get(c, "kex"), *profile = kat_get(c, "profile");
        bool share;
        struct kat_bytes vault, m5, c2s, s2c;
        uint8_t dc2s[32], ds2c[32], sc2s[32], ss2c[32];
        struct unit_replay dev_rng, srv_rng;
        struct challenge c1, c2;
        struct vault_params v;
        struct unit_hs h;

        ck_assert_ptr_nonnull(kex);
        ck_assert_ptr_nonnull(profile);
        share = strcmp(kex, "x25519") == 0;
        if (!share)
                ck_assert_str_eq(kex, "none");
        n->cases++;
        n->x25519 += share;
        v = unit_params(kat_get(c, "device_id"),
                        strcmp(profile, "paper") == 0 ? SV_PROFILE_PAPER : SV_PROFILE_HARDENED,
                        (uint16_t) kat_unsigned(c, "n"), (uint8_t) kat_unsigned(c, "m"),
                        (uint8_t) kat_unsigned(c, "p"), kat_unsigned(c, "epoch"));
        v.kex = share ? SV_KEX_X25519 : SV_KEX_NONE;
        vault = unit_kat_bytes(c, "vault");
        ck_assert_uint_eq(vault.len, vault_size(&v));
        c1 = kat_challenge(c, "c1");
        c2 = kat_challenge(c, "c2");
        unit_replay_init(&dev_rng, NULL);
        unit_replay_init(&srv_rng, NULL);
        replay_field(c, &dev_rng, HS_SESSION_ID, "session_id");
        replay_field(c, &dev_rng, HS_T1, "t1");
        replay_field(c, &dev_rng, HS_R2, "r2");
        unit_replay_challenge(&dev_rng, HS_C2, &c2);
        replay_field(c, &srv_rng, HS_R1, "r1");
        unit_replay_challenge(&srv_rng, HS_C1, &c1);
        replay_field(c, &srv_rng, HS_T2, "t2");
        if (share) {
                replay_field(c, &dev_rng, HS_E_DEV, "e_dev");
                replay_field(c, &srv_rng, HS_E_SRV, "e_srv");
        }

        unit_hs_init(&h, &v, vault.data, NULL, &dev_rng.rng, &srv_rng.rng);
        unit_hs_run_to(&h, UNIT_SERVER_RESPOND);
        ck_assert_int_eq(hs_server_channel_secrets(&h.srv, sc2s, ss2c), -EBUSY);
        ck_assert_int_eq(hs_device_channel_secrets(&h.dev, dc2s, ds2c), -EBUSY);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_CONFIRM), 0);
        ck_assert_int_eq(hs_device_channel_secrets(&h.dev, dc2s, ds2c), 0);
        /* M5 sent but not yet verified: the server still has no channel. */
        ck_assert_int_eq(hs_server_channel_secrets(&h.srv, sc2s, ss2c), -EBUSY);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_COMMIT), 0);
        ck_assert_int_eq(hs_server_channel_secrets(&h.srv, sc2s, ss2c), 0);

        m5 = unit_kat_bytes(c, "m5");
        expect_bytes(name, "m5", &m5, h.m5, h.m5_len);
        c2s = unit_kat_bytes(c, "c2s_secret");
        s2c = unit_kat_bytes(c, "s2c_secret");
        expect_bytes(name, "device c2s", &c2s, dc2s, sizeof dc2s);
        expect_bytes(name, "device s2c", &s2c, ds2c, sizeof ds2c);
        expect_bytes(name, "server c2s", &c2s, sc2s, sizeof sc2s);
        expect_bytes(name, "server s2c", &s2c, ss2c, sizeof ss2c);

        /* Wiped with the state. */
        hs_device_wipe(&h.dev);
        hs_server_wipe(&h.srv);
        ck_assert(unit_is_zero(h.dev.c2s, sizeof h.dev.c2s) && unit_is_zero(h.dev.s2c, sizeof h.dev.s2c));
        ck_assert(unit_is_zero(h.srv.c2s, sizeof h.srv.c2s) && unit_is_zero(h.srv.s2c, sizeof h.srv.s2c));
        ck_assert_int_eq(hs_server_channel_secrets(&h.srv, sc2s, ss2c), -EBUSY);
        unit_hs_free(&h);
        free(vault.data);
        free(m5.data);
        free(c2s.data);
        free(s2c.data);
        return 0;
}

/*
 * Every case of extensions.txt (kex none and x25519) driven through the two state machines
 * with the case's random values and scalars: both sides agree on both A_0, which are the
 * file's c2s_secret and s2c_secret, and neither side hands them out before M5 has verified.
 */
START_TEST(test_handshake_secrets) {
        struct secrets_count n = { 0 };

        ck_assert_int_ge(kat_each("extensions.txt", secrets_vector, &n), 0);
        /* Two cases of each in the file: a truncated file must not pass. */
        ck_assert_uint_ge(n.cases, 4);
        ck_assert_uint_ge(n.x25519, 2);
}
END_TEST

/* Random handshakes of both profiles: the two sides' secrets agree and differ by direction. */
START_TEST(test_handshake_secrets_agree) {
        uint8_t profile = _i % 2 ? SV_PROFILE_PAPER : SV_PROFILE_HARDENED;
        struct vault_params v = unit_params("agree-7", profile, 32, 16, 4, 5);
        uint8_t *keys = malloc(vault_size(&v)), dc2s[32], ds2c[32], sc2s[32], ss2c[32];
        struct unit_hs h;

        ck_assert_ptr_nonnull(keys);
        ck_assert_int_eq(crypto_random(keys, vault_size(&v)), 0);
        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_STEPS);
        ck_assert_int_eq(hs_device_channel_secrets(&h.dev, dc2s, ds2c), 0);
        ck_assert_int_eq(hs_server_channel_secrets(&h.srv, sc2s, ss2c), 0);
        ck_assert_mem_eq(dc2s, sc2s, 32);
        ck_assert_mem_eq(ds2c, ss2c, 32);
        ck_assert(memcmp(dc2s, ds2c, 32) != 0);
        ck_assert(memcmp(dc2s, hs_device_session_key(&h.dev), 32) != 0);
        unit_hs_free(&h);
        free(keys);
}
END_TEST

/* ---- header and seal bounds ------------------------------------------------------- */

START_TEST(test_header_check) {
        static const struct {
                uint8_t h[4];
                int want;
                size_t frame_len;
        } cases[] = {
                { { 1, 6, 0x00, 0x10 }, SV_MSG_DATA, 20 },
                { { 1, 6, 0x04, 0x00 }, SV_MSG_DATA, 1028 },
                { { 1, 7, 0x00, 0x10 }, SV_MSG_CLOSE, 20 },
                { { 0, 6, 0x00, 0x10 }, -EPROTONOSUPPORT, 0 },
                { { 2, 6, 0x00, 0x10 }, -EPROTONOSUPPORT, 0 },
                { { 1, 5, 0x00, 0x10 }, -EPROTO, 0 },           /* COMMIT */
                { { 1, 1, 0x00, 0x10 }, -EPROTO, 0 },
                { { 1, 8, 0x00, 0x10 }, -EPROTO, 0 },
                { { 1, 15, 0x00, 0x01 }, -EPROTO, 0 },          /* ERROR: none on the channel */
                { { 1, 6, 0x04, 0x01 }, -EMSGSIZE, 0 },
                { { 1, 6, 0xff, 0xff }, -EMSGSIZE, 0 },
                { { 1, 6, 0x00, 0x0f }, -EBADMSG, 0 },
                { { 1, 6, 0x00, 0x00 }, -EBADMSG, 0 },
                { { 1, 7, 0x00, 0x11 }, -EBADMSG, 0 },          /* CLOSE with a payload */
                { { 1, 7, 0x04, 0x00 }, -EBADMSG, 0 },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                size_t frame_len = 12345;
                int r = record_header_check(cases[i].h, 4, &frame_len);

                unit_assert(r == cases[i].want, "header %s: %d", unit_hex(cases[i].h, 4), r);
                ck_assert_uint_eq(frame_len, r >= 0 ? cases[i].frame_len : 12345);
        }
        for (size_t len = 0; len < 4; len++) {
                size_t frame_len = 0;

                ck_assert_int_eq(record_header_check(cases[0].h, len, &frame_len), -EBADMSG);
        }
}
END_TEST

/* A pair of chains of one direction from a random S. */
static void chain_pair(struct unit_rng *g, enum record_dir dir, struct record_chain *tx, struct record_chain *rx) {
        uint8_t s[32], a[32];

        unit_rng_bytes(g, s, sizeof s);
        ck_assert_int_eq(record_secret(s, dir, a), 0);
        record_init(rx, (uint8_t[32]) { 0 });
        memcpy(rx->a, a, sizeof a);
        record_init(tx, a);
}

START_TEST(test_seal_bounds) {
        struct record_chain tx, rx, before, unset = { 0 };
        uint8_t payload[RECORD_PAYLOAD_MAX + 1], frame[RECORD_FRAME_MAX + 1], out[RECORD_PAYLOAD_MAX];
        struct unit_rng g;
        size_t len = 777;

        unit_rng_init(&g, "seal-bounds");
        unit_rng_bytes(&g, payload, sizeof payload);
        chain_pair(&g, RECORD_C2S, &tx, &rx);
        before = tx;

        /* refused arguments leave the chain as it was and write no length */
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, RECORD_PAYLOAD_MAX + 1, frame, sizeof frame, &len), -EINVAL);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_CLOSE, payload, 1, frame, sizeof frame, &len), -EINVAL);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_COMMIT, NULL, 0, frame, sizeof frame, &len), -EINVAL);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, NULL, 3, frame, sizeof frame, &len), -EINVAL);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, 10, frame, RECORD_FRAME_LEN(10) - 1, &len), -ENOBUFS);
        ck_assert_int_eq(record_seal(&unset, SV_MSG_DATA, payload, 10, frame, sizeof frame, &len), -EINVAL);
        ck_assert_uint_eq(len, 777);
        ck_assert(chain_eq(&tx, &before));

        /* the extremes: empty DATA, the largest DATA, both open */
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, NULL, 0, frame, sizeof frame, &len), 0);
        ck_assert_uint_eq(len, 20);
        ck_assert_int_eq(record_open(&rx, frame, len, NULL, 0, &len), SV_MSG_DATA);
        ck_assert_uint_eq(len, 0);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, RECORD_PAYLOAD_MAX, frame, RECORD_FRAME_MAX, &len), 0);
        ck_assert_uint_eq(len, RECORD_FRAME_MAX);
        ck_assert_int_eq(record_open(&rx, frame, len, out, sizeof out, &len), SV_MSG_DATA);
        ck_assert_uint_eq(len, RECORD_PAYLOAD_MAX);
        ck_assert(memcmp(out, payload, len) == 0);
        ck_assert_uint_eq(tx.seq, 2);
        ck_assert_uint_eq(rx.seq, 2);

        /* CLOSE ends the sending side: nothing more is sealed */
        ck_assert_int_eq(record_seal(&tx, SV_MSG_CLOSE, NULL, 0, frame, sizeof frame, &len), 0);
        ck_assert_int_eq(tx.state, RECORD_CLOSED);
        ck_assert(unit_is_zero(tx.a, sizeof tx.a));
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, 1, frame, sizeof frame, &len), -ESHUTDOWN);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_CLOSE, NULL, 0, frame, sizeof frame, &len), -ESHUTDOWN);

        /* the counter never wraps: record 2^64-2 is the last one */
        chain_pair(&g, RECORD_S2C, &tx, &rx);
        tx.seq = rx.seq = UINT64_MAX - 1;
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, 5, frame, sizeof frame, &len), 0);
        ck_assert_int_eq(record_open(&rx, frame, len, out, sizeof out, &len), SV_MSG_DATA);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, 5, frame, sizeof frame, &len), -EOVERFLOW);
}
END_TEST

/* Random payloads both ways, checked against the payloads sent. */
START_TEST(test_round_trip) {
        struct unit_rng g;

        unit_rng_init(&g, "round-trip");
        for (int dir = RECORD_C2S; dir <= RECORD_S2C; dir++) {
                struct record_chain tx, rx;
                uint8_t payload[RECORD_PAYLOAD_MAX], frame[RECORD_FRAME_MAX], out[RECORD_PAYLOAD_MAX];
                size_t len, got;

                chain_pair(&g, (enum record_dir) dir, &tx, &rx);
                for (unsigned i = 0; i < 200; i++) {
                        size_t n = unit_rng_below(&g, RECORD_PAYLOAD_MAX + 1);

                        unit_rng_bytes(&g, payload, n);
                        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, payload, n, frame, sizeof frame, &len), 0);
                        ck_assert_uint_eq(len, RECORD_FRAME_LEN(n));
                        ck_assert_int_eq(record_open(&rx, frame, len, out, sizeof out, &got), SV_MSG_DATA);
                        unit_assert(got == n && memcmp(out, payload, n) == 0, "record %u of %zu bytes", i, n);
                }
                ck_assert(chain_eq(&tx, &rx));
        }
}
END_TEST

/* ---- attacks ---------------------------------------------------------------------- */

#define SESSION_RECORDS 5

/*
 * One session as an attacker on the wire sees it: the device sends SESSION_RECORDS DATA
 * records and a CLOSE (c2s), the server answers as many and a CLOSE (s2c). The fresh
 * receiving chains of both sides are kept so that each attack starts from them.
 */
struct session {
        struct record_chain c2s_rx, s2c_rx;     /* the server's and the device's receivers */
        uint8_t a0_c2s[32];                     /* for the leak test */
        uint8_t c2s[SESSION_RECORDS + 1][RECORD_FRAME_MAX], s2c[SESSION_RECORDS + 1][RECORD_FRAME_MAX];
        size_t c2s_len[SESSION_RECORDS + 1], s2c_len[SESSION_RECORDS + 1];
        uint8_t payload[SESSION_RECORDS][64];
};

/* One direction of the session: its fresh receiver, and the records its sender seals. */
static void session_direction(struct session *ss, const uint8_t s[32], enum record_dir dir, struct record_chain *rx,
                              uint8_t frames[][RECORD_FRAME_MAX], size_t *lens) {
        struct record_chain tx;
        uint8_t a[32];

        ck_assert_int_eq(record_secret(s, dir, a), 0);
        if (dir == RECORD_C2S)
                memcpy(ss->a0_c2s, a, 32);
        record_init(rx, (uint8_t[32]) { 0 });
        memcpy(rx->a, a, 32);
        record_init(&tx, a);
        for (int i = 0; i <= SESSION_RECORDS; i++)
                ck_assert_int_eq(record_seal(&tx, i < SESSION_RECORDS ? SV_MSG_DATA : SV_MSG_CLOSE,
                                             ss->payload[i % SESSION_RECORDS], i < SESSION_RECORDS ? 64 : 0,
                                             frames[i], RECORD_FRAME_MAX, &lens[i]), 0);
}

/* The server sends the same payloads back: only the secrets tell the directions apart. */
static void session_record(struct session *ss) {
        uint8_t s[32];
        struct unit_rng g;

        unit_rng_init(&g, "session");
        unit_rng_bytes(&g, s, sizeof s);
        for (int i = 0; i < SESSION_RECORDS; i++)
                unit_rng_bytes(&g, ss->payload[i], sizeof ss->payload[i]);
        session_direction(ss, s, RECORD_C2S, &ss->c2s_rx, ss->c2s, ss->c2s_len);
        session_direction(ss, s, RECORD_S2C, &ss->s2c_rx, ss->s2c, ss->s2c_len);
}

/* Opens a frame that must be refused; checks the chain failed for good and nothing leaked. */
static void expect_refused(struct record_chain *rx, const uint8_t *frame, size_t len, int want, const char *what) {
        uint8_t out[RECORD_PAYLOAD_MAX];
        size_t got = 4242;
        int r;

        memset(out, 0, sizeof out);
        r = record_open(rx, frame, len, out, sizeof out, &got);
        unit_assert(r < 0 && (want == 0 || r == want), "%s: open gave %d", what, r);
        ck_assert_uint_eq(got, 4242);
        ck_assert(unit_is_zero(out, sizeof out));
        ck_assert_int_eq(rx->state, RECORD_FAILED);
        ck_assert(unit_is_zero(rx->a, sizeof rx->a));
        /* Poisoned: not even the next genuine record opens. */
        ck_assert_int_eq(record_open(rx, frame, len, out, sizeof out, &got), -EPIPE);
}

static void open_ok(struct record_chain *rx, const struct session *ss, const uint8_t *frame, size_t len, int i) {
        uint8_t out[RECORD_PAYLOAD_MAX];
        size_t got;

        ck_assert_int_eq(record_open(rx, frame, len, out, sizeof out, &got), SV_MSG_DATA);
        ck_assert_uint_eq(got, 64);
        ck_assert(memcmp(out, ss->payload[i], 64) == 0);
}

START_TEST(test_replay_reorder_drop) {
        struct session ss;
        struct record_chain rx;

        session_record(&ss);

        /* replay: record 0 twice */
        rx = ss.c2s_rx;
        open_ok(&rx, &ss, ss.c2s[0], ss.c2s_len[0], 0);
        expect_refused(&rx, ss.c2s[0], ss.c2s_len[0], -EBADMSG, "record 0 replayed");

        /* replay of an older record later in the stream */
        rx = ss.c2s_rx;
        for (int i = 0; i < 3; i++)
                open_ok(&rx, &ss, ss.c2s[i], ss.c2s_len[i], i);
        expect_refused(&rx, ss.c2s[1], ss.c2s_len[1], -EBADMSG, "record 1 replayed after 2");

        /* reorder: 1 before 0 */
        rx = ss.c2s_rx;
        expect_refused(&rx, ss.c2s[1], ss.c2s_len[1], -EBADMSG, "record 1 first");

        /* drop: 0 then 2 */
        rx = ss.c2s_rx;
        open_ok(&rx, &ss, ss.c2s[0], ss.c2s_len[0], 0);
        expect_refused(&rx, ss.c2s[2], ss.c2s_len[2], -EBADMSG, "record 1 dropped");

        /* a dropped tail ending in a CLOSE from elsewhere: CLOSE 5 at position 1 */
        rx = ss.c2s_rx;
        open_ok(&rx, &ss, ss.c2s[0], ss.c2s_len[0], 0);
        expect_refused(&rx, ss.c2s[SESSION_RECORDS], ss.c2s_len[SESSION_RECORDS], -EBADMSG, "CLOSE early");

        /* the whole stream in order opens (the attacks above are refused for what they are) */
        rx = ss.c2s_rx;
        for (int i = 0; i < SESSION_RECORDS; i++)
                open_ok(&rx, &ss, ss.c2s[i], ss.c2s_len[i], i);
        ck_assert_int_eq(record_open(&rx, ss.c2s[SESSION_RECORDS], ss.c2s_len[SESSION_RECORDS], NULL, 0,
                                     &(size_t) { 0 }), SV_MSG_CLOSE);
}
END_TEST

START_TEST(test_reflection) {
        struct session ss;
        struct record_chain rx;

        session_record(&ss);
        for (int i = 0; i <= SESSION_RECORDS; i++) {
                /* the device's own record 0 sent back to it, and the server's to the server */
                rx = ss.s2c_rx;
                for (int j = 0; j < i; j++)
                        open_ok(&rx, &ss, ss.s2c[j], ss.s2c_len[j], j);
                expect_refused(&rx, ss.c2s[i], ss.c2s_len[i], -EBADMSG, "c2s reflected to the device");
                rx = ss.c2s_rx;
                for (int j = 0; j < i; j++)
                        open_ok(&rx, &ss, ss.c2s[j], ss.c2s_len[j], j);
                expect_refused(&rx, ss.s2c[i], ss.s2c_len[i], -EBADMSG, "s2c reflected to the server");
        }
}
END_TEST

START_TEST(test_truncation_and_extension) {
        struct session ss;
        uint8_t cut[RECORD_FRAME_MAX + 1];

        session_record(&ss);
        for (int which = 0; which <= SESSION_RECORDS; which += SESSION_RECORDS) {
                const uint8_t *frame = ss.c2s[which];
                size_t len = ss.c2s_len[which];

                for (size_t k = 0; k < len; k++) {
                        struct record_chain rx = ss.c2s_rx;

                        /* cut as it arrives: the header promises more */
                        memcpy(cut, frame, k);
                        expect_refused(&rx, cut, k, 0, "truncated");
                        /* cut with the header's length made to match */
                        if (k >= SV_HEADER_LEN + RECORD_BODY_MIN) {
                                rx = ss.c2s_rx;
                                cut[2] = (uint8_t) ((k - SV_HEADER_LEN) >> 8);
                                cut[3] = (uint8_t) (k - SV_HEADER_LEN);
                                expect_refused(&rx, cut, k, -EBADMSG, "truncated, length fixed");
                        }
                }
                /* one byte more */
                {
                        struct record_chain rx = ss.c2s_rx;

                        memcpy(cut, frame, len);
                        cut[len] = 0;
                        expect_refused(&rx, cut, len + 1, -EBADMSG, "extended");
                }
        }
}
END_TEST

START_TEST(test_bit_flips) {
        struct session ss;
        uint8_t frame[RECORD_FRAME_MAX];

        session_record(&ss);
        for (int which = 0; which <= SESSION_RECORDS; which += SESSION_RECORDS) {
                size_t len = ss.c2s_len[which];

                for (size_t bit = 0; bit < 8 * len; bit++) {
                        struct record_chain rx = ss.c2s_rx;

                        for (int j = 0; j < which; j++)
                                open_ok(&rx, &ss, ss.c2s[j], ss.c2s_len[j], j);
                        memcpy(frame, ss.c2s[which], len);
                        frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        expect_refused(&rx, frame, len, 0, "bit flipped");
                }
        }
}
END_TEST

START_TEST(test_after_close) {
        struct session ss;
        struct record_chain tx, rx;
        uint8_t a[32], extra[RECORD_FRAME_MAX], after[RECORD_FRAME_MAX];
        size_t extra_len, after_len, got;

        session_record(&ss);
        /*
         * A sender that goes on after its CLOSE: record 6 sealed with A_6, which is a valid
         * record at position 6. Built by a sender that put a DATA where the CLOSE was.
         */
        memcpy(a, ss.a0_c2s, 32);
        record_init(&tx, a);
        for (int i = 0; i < SESSION_RECORDS; i++)
                ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, ss.payload[i], 64, extra, sizeof extra, &extra_len), 0);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, ss.payload[0], 64, extra, sizeof extra, &extra_len), 0);
        ck_assert_int_eq(record_seal(&tx, SV_MSG_DATA, ss.payload[1], 64, after, sizeof after, &after_len), 0);

        /* The record itself is genuine: a receiver that had record 5 as DATA opens it ... */
        rx = ss.c2s_rx;
        for (int i = 0; i < SESSION_RECORDS; i++)
                open_ok(&rx, &ss, ss.c2s[i], ss.c2s_len[i], i);
        open_ok(&rx, &ss, extra, extra_len, 0);
        open_ok(&rx, &ss, after, after_len, 1);

        /* ... but after the CLOSE nothing is read, however genuine. */
        rx = ss.c2s_rx;
        for (int i = 0; i < SESSION_RECORDS; i++)
                open_ok(&rx, &ss, ss.c2s[i], ss.c2s_len[i], i);
        ck_assert_int_eq(record_open(&rx, ss.c2s[SESSION_RECORDS], ss.c2s_len[SESSION_RECORDS], NULL, 0, &got),
                         SV_MSG_CLOSE);
        ck_assert_int_eq(rx.state, RECORD_CLOSED);
        expect_refused(&rx, after, after_len, -ESHUTDOWN, "DATA after CLOSE");

        /* a second CLOSE, replayed */
        rx = ss.c2s_rx;
        for (int i = 0; i < SESSION_RECORDS; i++)
                open_ok(&rx, &ss, ss.c2s[i], ss.c2s_len[i], i);
        ck_assert_int_eq(record_open(&rx, ss.c2s[SESSION_RECORDS], ss.c2s_len[SESSION_RECORDS], NULL, 0, &got),
                         SV_MSG_CLOSE);
        expect_refused(&rx, ss.c2s[SESSION_RECORDS], ss.c2s_len[SESSION_RECORDS], -ESHUTDOWN, "CLOSE twice");
}
END_TEST

/*
 * A key that leaks at record i opens no record before i. The leak is the receiver's whole
 * state after record i-1 (it holds A_i and nothing else secret): with it the attacker opens
 * record i and later ones, but A_i put at any earlier position opens nothing there, and
 * neither A_j nor KR_j of an earlier record is left in the state to be found.
 */
START_TEST(test_leak_opens_nothing_earlier) {
        struct session ss;
        uint8_t chain_a[SESSION_RECORDS + 1][32], kr[SESSION_RECORDS][32];

        session_record(&ss);
        /* The ratchet as §11 writes it, computed here independently of record.c. */
        memcpy(chain_a[0], ss.a0_c2s, 32);
        for (int j = 0; j < SESSION_RECORDS; j++) {
                ck_assert_int_eq(crypto_hkdf_expand(chain_a[j], "sv1 record", kr[j], 32), 0);
                ck_assert_int_eq(crypto_hkdf_expand(chain_a[j], "sv1 next", chain_a[j + 1], 32), 0);
        }

        for (int i = 1; i < SESSION_RECORDS; i++) {
                struct record_chain rx = ss.c2s_rx, leak;

                for (int j = 0; j < i; j++)
                        open_ok(&rx, &ss, ss.c2s[j], ss.c2s_len[j], j);
                leak = rx;
                ck_assert_uint_eq(leak.seq, (uint64_t) i);
                ck_assert(memcmp(leak.a, chain_a[i], 32) == 0);

                /* The leak is real: record i and the next open with it. */
                {
                        struct record_chain att = leak;

                        for (int j = i; j < SESSION_RECORDS; j++)
                                open_ok(&att, &ss, ss.c2s[j], ss.c2s_len[j], j);
                }
                /* Nothing before i: A_i at every earlier position, on every earlier record. */
                for (int j = 0; j < i; j++)
                        for (int pos = 0; pos < i; pos++) {
                                struct record_chain att = leak;

                                att.seq = (uint64_t) pos;
                                expect_refused(&att, ss.c2s[j], ss.c2s_len[j], -EBADMSG, "A_i on an earlier record");
                        }
                /* A_j and KR_j of the records before i are nowhere in the state. */
                for (int j = 0; j < i; j++)
                        for (size_t off = 0; off + 32 <= sizeof leak; off++) {
                                ck_assert(memcmp((uint8_t *) &leak + off, chain_a[j], 32) != 0);
                                ck_assert(memcmp((uint8_t *) &leak + off, kr[j], 32) != 0);
                        }
        }
}
END_TEST

/* A failed open wipes the payload buffer and poisons; a CLOSEd receiver holds no secret. */
START_TEST(test_failed_open_poisons) {
        struct session ss;
        struct record_chain rx, unset = { 0 };
        uint8_t frame[RECORD_FRAME_MAX], out[8];
        size_t got = 1;

        session_record(&ss);
        /* too small a buffer for the payload is a failure like any other */
        rx = ss.c2s_rx;
        ck_assert_int_eq(record_open(&rx, ss.c2s[0], ss.c2s_len[0], out, sizeof out, &got), -ENOBUFS);
        ck_assert_int_eq(rx.state, RECORD_FAILED);
        ck_assert(unit_is_zero(rx.a, sizeof rx.a));
        ck_assert_uint_eq(got, 1);
        ck_assert_int_eq(record_open(&rx, ss.c2s[0], ss.c2s_len[0], frame, sizeof frame, &got), -EPIPE);

        /* header errors poison too: the stream cannot be resynchronised */
        rx = ss.c2s_rx;
        memcpy(frame, ss.c2s[0], ss.c2s_len[0]);
        frame[0] = 2;
        expect_refused(&rx, frame, ss.c2s_len[0], -EPROTONOSUPPORT, "version 2");
        rx = ss.c2s_rx;
        frame[0] = 1;
        frame[1] = SV_MSG_ERROR;
        expect_refused(&rx, frame, ss.c2s_len[0], -EPROTO, "ERROR type");

        ck_assert_int_eq(record_open(&unset, ss.c2s[0], ss.c2s_len[0], NULL, 0, &got), -EINVAL);
        ck_assert_uint_eq(got, 1);
}
END_TEST

static Suite *record_suite(void) {
        Suite *s = suite_create("record");
        TCase *tc = tcase_create("channel");
        TCase *attacks = tcase_create("attacks");

        tcase_add_test(tc, test_vectors);
        tcase_add_test(tc, test_handshake_secrets);
        tcase_add_loop_test(tc, test_handshake_secrets_agree, 0, 2);
        tcase_add_test(tc, test_header_check);
        tcase_add_test(tc, test_seal_bounds);
        tcase_add_test(tc, test_round_trip);
        suite_add_tcase(s, tc);
        tcase_add_test(attacks, test_replay_reorder_drop);
        tcase_add_test(attacks, test_reflection);
        tcase_add_test(attacks, test_truncation_and_extension);
        tcase_add_test(attacks, test_bit_flips);
        tcase_add_test(attacks, test_after_close);
        tcase_add_test(attacks, test_leak_opens_nothing_earlier);
        tcase_add_test(attacks, test_failed_open_poisons);
        suite_add_tcase(s, attacks);
        return s;
}

int main(void) {
        return unit_run(record_suite());
}
