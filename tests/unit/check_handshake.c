/* SPDX-License-Identifier: MIT */

/*
 * common/hs-device.c, hs-server.c: the two state machines of protocol §4–5 against each
 * other. Many random handshakes of both profiles, one handshake recomputed step by step
 * from the primitives, and every rule the machines enforce: step order, no state change
 * on failure, tampered and crafted messages, decoys, ERROR frames, wrong vaults.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "keysched.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t profiles[2] = { SV_PROFILE_HARDENED, SV_PROFILE_PAPER };

static uint8_t *vault_random(struct unit_rng *g, const struct vault_params *v) {
        uint8_t *keys = malloc(vault_size(v));

        ck_assert_ptr_nonnull(keys);
        if (g) {
                /* Expanded from 32 seeded bytes in one call: a large vault costs little. */
                uint8_t seed[32];

                unit_rng_bytes(g, seed, sizeof seed);
                ck_assert_int_eq(crypto_kbkdf(seed, sizeof seed, "unit vault", NULL, 0, keys, vault_size(v)), 0);
        } else
                ck_assert_int_eq(crypto_random(keys, vault_size(v)), 0);
        return keys;
}

static bool all_keys_differ(const uint8_t *a, const uint8_t *b, const struct vault_params *v) {
        for (size_t k = 0; k < v->n; k++)
                if (memcmp(a + k * v->m, b + k * v->m, v->m) == 0)
                        return false;
        return true;
}

/* ---- many random handshakes ----------------------------------------------------------- */

static struct vault_params random_params(struct unit_rng *g, uint8_t profile, int i) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
        /* Corners first: smallest, largest, n not a multiple of 4, m = 32. */
        static const struct {
                uint16_t n;
                uint8_t m, p;
        } corners[] = {
                { 8, 16, 1 }, { 8, 32, 4 }, { 4096, 32, 64 }, { 4095, 16, 64 }, { 13, 32, 6 },
                { 9, 16, 4 }, { 10, 32, 5 }, { 129, 16, 64 }, { 4093, 32, 1 }, { 256, 16, 16 },
        };
        struct vault_params v = { .profile = profile };
        char id[SV_ID_MAX + 1];
        size_t idl = unit_rng_range(g, 1, SV_ID_MAX);
        unsigned bucket, pmax;

        if ((size_t) i < ARRAY_SIZE(corners)) {
                v.n = corners[i].n;
                v.m = corners[i].m;
                v.p = corners[i].p;
        } else {
                /* Half small vaults, a fifth large ones: 1000 handshakes stay fast under ASan. */
                bucket = unit_rng_below(g, 20);
                v.n = (uint16_t) (bucket < 10 ? unit_rng_range(g, 8, 64) :
                                  bucket < 16 ? unit_rng_range(g, 65, 600) : unit_rng_range(g, 601, 4096));
                v.m = unit_rng_below(g, 2) ? 32 : 16;
                pmax = v.n / 2 < SV_P_MAX ? v.n / 2 : SV_P_MAX;
                v.p = (uint8_t) unit_rng_range(g, 1, pmax);
        }
        switch (unit_rng_below(g, 4)) {
        case 0: v.epoch = 0; break;
        case 1: v.epoch = UINT64_MAX - 1 - unit_rng_below(g, 3); break;
        default: unit_rng_bytes(g, &v.epoch, sizeof v.epoch); v.epoch >>= 1; break;
        }
        for (size_t k = 0; k < idl; k++)
                id[k] = alphabet[unit_rng_below(g, sizeof alphabet - 1)];
        id[idl] = '\0';
        ck_assert_int_eq(vault_params_set_id(&v, id), 0);
        ck_assert_int_eq(vault_params_validate(&v), 0);
        return v;
}

/* One complete handshake; checks agreement and returns the next vault in keys. */
static void handshake_once(const struct vault_params *v, uint8_t *keys, uint8_t session[SV_KEY_LEN],
                           int round, int gen) {
        struct unit_hs h;
        const uint8_t *ks_dev, *ks_srv;

        unit_hs_init(&h, v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_STEPS);
        ks_dev = hs_device_session_key(&h.dev);
        ks_srv = hs_server_session_key(&h.srv);
        unit_assert(ks_dev && ks_srv, "round %d gen %d: session key missing", round, gen);
        unit_assert(memcmp(ks_dev, ks_srv, SV_KEY_LEN) == 0, "round %d gen %d (%s n=%u m=%u p=%u): session keys differ",
                    round, gen, vault_profile_to_string(v->profile), v->n, v->m, v->p);
        unit_assert(memcmp(h.dev_next, h.srv_next, vault_size(v)) == 0,
                    "round %d gen %d (%s n=%u m=%u p=%u): next vaults differ",
                    round, gen, vault_profile_to_string(v->profile), v->n, v->m, v->p);
        unit_assert(all_keys_differ(h.dev_next, keys, v), "round %d gen %d: a key survived the update", round, gen);
        unit_assert(h.hello.epoch == v->epoch, "round %d: M1 epoch", round);
        unit_assert(h.hello.kex == v->kex, "round %d: M1 kex", round);
        unit_assert(h.m1_len == SV_HEADER_LEN + vault_body_len(SV_MSG_HELLO, v), "round %d: M1 length", round);
        memcpy(session, ks_dev, SV_KEY_LEN);
        memcpy(keys, h.dev_next, vault_size(v));
        hs_device_wipe(&h.dev);
        hs_server_wipe(&h.srv);
        unit_hs_free(&h);
}

/* _i 0 and 1: both profiles without a key share; 2: hardened with the X25519 share (§10). */
START_TEST(test_random_handshakes) {
        uint8_t profile = profiles[_i % 2];
        uint8_t prev_session[SV_KEY_LEN] = { 0 };
        struct unit_rng g;

        unit_rng_init(&g, _i == 2 ? "handshakes-x25519" :
                          profile == SV_PROFILE_HARDENED ? "handshakes-hardened" : "handshakes-paper");
        for (int round = 0; round < 1000; round++) {
                struct vault_params v = random_params(&g, profile, round);
                uint8_t *keys = vault_random(&g, &v), session[SV_KEY_LEN];
                int generations = round % 40 == 0 && v.epoch < UINT64_MAX - 8 ? 4 : 1;

                v.kex = _i == 2 ? SV_KEX_X25519 : SV_KEX_NONE;
                ck_assert_int_eq(vault_params_validate(&v), 0);
                for (int gen = 0; gen < generations; gen++) {
                        handshake_once(&v, keys, session, round, gen);
                        unit_assert(memcmp(session, prev_session, sizeof session) != 0,
                                    "round %d gen %d: session key repeated", round, gen);
                        memcpy(prev_session, session, sizeof session);
                        v.epoch++;
                }
                free(keys);
        }
}
END_TEST

/* ---- one handshake recomputed from the primitives ------------------------------------- */

static void fill_pattern(uint8_t *p, size_t len, uint8_t start) {
        for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t) (start + i);
}

START_TEST(test_recomputed) {
        static const uint16_t c1_idx[4] = { 1, 5, 6, 12 }, c2_idx[4] = { 0, 7, 10, 11 };
        uint8_t profile = profiles[_i / 2], m = _i % 2 ? 32 : 16;
        struct vault_params v = unit_params("recompute-me", profile, 13, m, 4, 1000);
        struct challenge c1 = unit_challenge(4, c1_idx), c2;
        uint8_t sid[16], r1[16], r2[16], t1[32], t2[32], t[32], s[32];
        uint8_t th2[32], th3[32], th4[32], x1[32], x2[32], k3[32], k4[32], k5[32], u[32], ks[32];
        uint8_t want[SV_FRAME_MAX], pt[SV_FRAME_MAX], ts[4 * SV_FRAME_MAX], *next;
        size_t k3_len, k4_len, ts_len = 0, off;
        struct unit_replay dev_rng, srv_rng;
        struct hs_trace dev_trace, srv_trace;
        struct unit_hs h;
        uint8_t *keys;

        c2 = unit_challenge(4, c2_idx);
        keys = vault_random(NULL, &v);
        fill_pattern(sid, 16, 0x10);
        fill_pattern(r1, 16, 0x20);
        fill_pattern(r2, 16, 0x30);
        fill_pattern(t1, 32, 0x40);
        fill_pattern(t2, 32, 0x90);
        unit_replay_init(&dev_rng, NULL);
        unit_replay_init(&srv_rng, NULL);
        unit_replay_bytes(&dev_rng, HS_SESSION_ID, sid, 16);
        unit_replay_bytes(&dev_rng, HS_T1, t1, 32);
        unit_replay_bytes(&dev_rng, HS_R2, r2, 16);
        unit_replay_challenge(&dev_rng, HS_C2, &c2);
        unit_replay_bytes(&srv_rng, HS_R1, r1, 16);
        unit_replay_challenge(&srv_rng, HS_C1, &c1);
        unit_replay_bytes(&srv_rng, HS_T2, t2, 32);

        unit_hs_init(&h, &v, keys, NULL, &dev_rng.rng, &srv_rng.rng);
        memset(&dev_trace, 0, sizeof dev_trace);
        memset(&srv_trace, 0, sizeof srv_trace);
        h.dev.trace = &dev_trace;
        h.srv.trace = &srv_trace;
        unit_hs_run_to(&h, UNIT_STEPS);

        /* M1 = 01 01 len | profile | id_len | id | session_id | u64 epoch */
        off = 0;
        want[off++] = 1, want[off++] = 1, off += 2;
        want[off++] = profile, want[off++] = 12;
        memcpy(want + off, "recompute-me", 12), off += 12;
        memcpy(want + off, sid, 16), off += 16;
        be64_put(want + off, 1000), off += 8;
        be16_put(want + 2, (uint16_t) (off - 4));
        ck_assert_uint_eq(h.m1_len, off);
        ck_assert_msg(memcmp(h.m1, want, off) == 0, "M1 %s", unit_hex(h.m1, h.m1_len));
        /* M2 = 01 02 len | r1 | p | C1 */
        off = 0;
        want[off++] = 1, want[off++] = 2, off += 2;
        memcpy(want + off, r1, 16), off += 16;
        want[off++] = 4;
        for (int i = 0; i < 4; i++)
                be16_put(want + off, c1.idx[i]), off += 2;
        be16_put(want + 2, (uint16_t) (off - 4));
        ck_assert_uint_eq(h.m2_len, off);
        ck_assert_msg(memcmp(h.m2, want, off) == 0, "M2 %s", unit_hex(h.m2, h.m2_len));

        /* K3 and the M3 plaintext r1 || t1 || r2 || C2 */
        memcpy(ts, h.m1, h.m1_len), ts_len = h.m1_len;
        memcpy(ts + ts_len, h.m2, h.m2_len), ts_len += h.m2_len;
        ck_assert_int_eq(crypto_sha256(ts, ts_len, th2), 0);
        memset(x1, 0, sizeof x1);
        for (int i = 0; i < 4; i++)
                for (unsigned b = 0; b < m; b++)
                        x1[b] ^= keys[(size_t) c1.idx[i] * m + b];
        if (profile == SV_PROFILE_HARDENED) {
                ck_assert_int_eq(crypto_hkdf(th2, 32, x1, m, "sv1 k3", k3, 32), 0);
                k3_len = 32;
        } else {
                memcpy(k3, x1, m);
                k3_len = m;
        }
        ck_assert_uint_eq(h.m3_len, 4 + 81 + 2 * 4);
        ck_assert_uint_eq(h.m3[1], SV_MSG_RESPONSE);
        ck_assert_int_eq(crypto_aead_open(k3, k3_len, th2, th2, 32, h.m3 + 4, h.m3_len - 4, pt), 0);
        ck_assert(memcmp(pt, r1, 16) == 0 && memcmp(pt + 16, t1, 32) == 0 && memcmp(pt + 48, r2, 16) == 0);
        ck_assert_uint_eq(pt[64], 4);
        for (int i = 0; i < 4; i++)
                ck_assert_uint_eq(be16_get(pt + 65 + 2 * i), c2.idx[i]);

        /* K4 and the M4 plaintext r2 || t2 */
        memcpy(ts + ts_len, h.m3, h.m3_len), ts_len += h.m3_len;
        ck_assert_int_eq(crypto_sha256(ts, ts_len, th3), 0);
        memset(x2, 0, sizeof x2);
        for (int i = 0; i < 4; i++)
                for (unsigned b = 0; b < m; b++)
                        x2[b] ^= keys[(size_t) c2.idx[i] * m + b];
        if (profile == SV_PROFILE_HARDENED) {
                uint8_t ikm[64];

                memcpy(ikm, x2, m);
                memcpy(ikm + m, t1, 32);
                ck_assert_int_eq(crypto_hkdf(th3, 32, ikm, m + 32u, "sv1 k4", k4, 32), 0);
                k4_len = 32;
        } else {
                for (unsigned b = 0; b < m; b++)
                        k4[b] = x2[b] ^ t1[b];
                k4_len = m;
        }
        ck_assert_uint_eq(h.m4_len, 4 + SV_CONFIRM_BODY_LEN);
        ck_assert_int_eq(crypto_aead_open(k4, k4_len, th3, th3, 32, h.m4 + 4, h.m4_len - 4, pt), 0);
        ck_assert(memcmp(pt, r2, 16) == 0 && memcmp(pt + 16, t2, 32) == 0);

        /* K5, M5, session key, U */
        memcpy(ts + ts_len, h.m4, h.m4_len), ts_len += h.m4_len;
        ck_assert_int_eq(crypto_sha256(ts, ts_len, th4), 0);
        for (int i = 0; i < 32; i++)
                t[i] = t1[i] ^ t2[i];
        ck_assert_int_eq(crypto_hkdf_extract(th4, 32, t, 32, s), 0);
        ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 k5", k5, 32), 0);
        ck_assert_int_eq(crypto_aead_seal(k5, 32, th4, th4, 32, NULL, 0, want), 0);
        ck_assert_uint_eq(h.m5_len, 4 + 16);
        ck_assert(memcmp(h.m5, "\x01\x05\x00\x10", 4) == 0);
        ck_assert_msg(memcmp(h.m5 + 4, want, 16) == 0, "M5 tag");
        if (profile == SV_PROFILE_HARDENED)
                ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 session", ks, 32), 0);
        else
                memcpy(ks, t, 32);
        ck_assert(memcmp(hs_device_session_key(&h.dev), ks, 32) == 0);
        ck_assert(memcmp(hs_server_session_key(&h.srv), ks, 32) == 0);

        next = malloc(vault_size(&v));
        ck_assert_ptr_nonnull(next);
        if (profile == SV_PROFILE_HARDENED) {
                ck_assert_int_eq(crypto_hkdf_expand(s, "sv1 update", u, 32), 0);
                ck_assert_int_eq(vault_update_hardened(keys, &v, u, next), 0);
        } else
                ck_assert_int_eq(vault_update_paper(keys, &v, ts, ts_len, next), 0);
        ck_assert_msg(memcmp(h.dev_next, next, vault_size(&v)) == 0, "device next vault");
        ck_assert_msg(memcmp(h.srv_next, next, vault_size(&v)) == 0, "server next vault");

        /* The traces agree with all of the above, on both sides. */
        ck_assert(memcmp(dev_trace.th2, th2, 32) == 0 && memcmp(srv_trace.th2, th2, 32) == 0);
        ck_assert(memcmp(dev_trace.th3, th3, 32) == 0 && memcmp(srv_trace.th3, th3, 32) == 0);
        ck_assert(memcmp(dev_trace.th4, th4, 32) == 0 && memcmp(srv_trace.th4, th4, 32) == 0);
        ck_assert(memcmp(dev_trace.x1, x1, m) == 0 && memcmp(srv_trace.x2, x2, m) == 0);
        ck_assert_uint_eq(dev_trace.k3_len, k3_len);
        ck_assert_uint_eq(srv_trace.k4_len, k4_len);
        ck_assert(memcmp(srv_trace.k3, k3, k3_len) == 0 && memcmp(dev_trace.k4, k4, k4_len) == 0);
        ck_assert(memcmp(dev_trace.k5, k5, 32) == 0 && memcmp(srv_trace.k5, k5, 32) == 0);
        /* Each value was drawn once, from the side that owns it. */
        ck_assert_uint_eq(dev_rng.calls[HS_T1], 1);
        ck_assert_uint_eq(dev_rng.calls[HS_C2], 1);
        ck_assert_uint_eq(dev_rng.calls[HS_R1] + dev_rng.calls[HS_T2] + dev_rng.calls[HS_C1], 0);
        ck_assert_uint_eq(srv_rng.calls[HS_T2], 1);
        ck_assert_uint_eq(srv_rng.calls[HS_SESSION_ID] + srv_rng.calls[HS_T1] + srv_rng.calls[HS_C2], 0);
        free(next);
        free(keys);
        unit_hs_free(&h);
}
END_TEST

/* ---- state-machine rules -------------------------------------------------------------- */

/*
 * A completed handshake whose frames are valid input for every step; only the state can
 * make a step fail.
 */
struct ordered {
        uint8_t *keys;
        struct unit_hs ref;
        struct hs_device dev_at[4];     /* INIT, HELLO_SENT, RESPONSE_SENT, DONE */
        struct hs_server srv_at[5];     /* INIT, HELLO_RECEIVED, CHALLENGE_SENT, CONFIRM_SENT, DONE */
};

static void ordered_setup(struct ordered *o) {
        struct vault_params v = unit_params("order", SV_PROFILE_HARDENED, 32, 16, 4, 9);

        o->keys = vault_random(NULL, &v);
        unit_hs_init(&o->ref, &v, o->keys, NULL, NULL, NULL);
        memcpy(&o->dev_at[0], &o->ref.dev, sizeof o->ref.dev);
        memcpy(&o->srv_at[0], &o->ref.srv, sizeof o->ref.srv);
        unit_hs_run_to(&o->ref, UNIT_SERVER_HELLO);
        memcpy(&o->dev_at[1], &o->ref.dev, sizeof o->ref.dev);
        memcpy(&o->srv_at[1], &o->ref.srv, sizeof o->ref.srv);
        ck_assert_int_eq(unit_hs_step(&o->ref, UNIT_SERVER_CHALLENGE), 0);
        memcpy(&o->srv_at[2], &o->ref.srv, sizeof o->ref.srv);
        ck_assert_int_eq(unit_hs_step(&o->ref, UNIT_DEVICE_RESPOND), 0);
        memcpy(&o->dev_at[2], &o->ref.dev, sizeof o->ref.dev);
        ck_assert_int_eq(unit_hs_step(&o->ref, UNIT_SERVER_RESPOND), 0);
        memcpy(&o->srv_at[3], &o->ref.srv, sizeof o->ref.srv);
        ck_assert_int_eq(unit_hs_step(&o->ref, UNIT_DEVICE_CONFIRM), 0);
        memcpy(&o->dev_at[3], &o->ref.dev, sizeof o->ref.dev);
        ck_assert_int_eq(unit_hs_step(&o->ref, UNIT_SERVER_COMMIT), 0);
        memcpy(&o->srv_at[4], &o->ref.srv, sizeof o->ref.srv);
        ck_assert_uint_eq(o->dev_at[3].state, HS_DEVICE_DONE);
        ck_assert_uint_eq(o->srv_at[4].state, HS_SERVER_DONE);
}

static void ordered_free(struct ordered *o) {
        unit_hs_free(&o->ref);
        free(o->keys);
}

/* Runs step on a copy of the machine in `state`; returns its result and whether it changed anything. */
static int run_in_state(struct ordered *o, enum unit_step step, int state, bool *changed) {
        struct unit_hs h;
        bool device = step == UNIT_DEVICE_HELLO || step == UNIT_DEVICE_RESPOND || step == UNIT_DEVICE_CONFIRM;
        int r;

        memcpy(&h, &o->ref, sizeof h);
        h.dev_next = malloc(vault_size(&h.params));
        h.srv_next = malloc(vault_size(&h.params));
        if (device)
                memcpy(&h.dev, &o->dev_at[state], sizeof h.dev);
        else
                memcpy(&h.srv, &o->srv_at[state], sizeof h.srv);
        /* The device's M1 needs a fresh buffer: it would be overwritten on success. */
        r = unit_hs_step(&h, step);
        *changed = device ? memcmp(&h.dev, &o->dev_at[state], sizeof h.dev) != 0 :
                            memcmp(&h.srv, &o->srv_at[state], sizeof h.srv) != 0;
        unit_hs_free(&h);
        return r;
}

START_TEST(test_step_order) {
        /* For each step, the one state in which it is allowed. */
        static const struct {
                enum unit_step step;
                int allowed;
                int states;
        } steps[] = {
                { UNIT_DEVICE_HELLO, 0, 4 },
                { UNIT_DEVICE_RESPOND, 1, 4 },
                { UNIT_DEVICE_CONFIRM, 2, 4 },
                { UNIT_SERVER_HELLO, 0, 5 },
                { UNIT_SERVER_CHALLENGE, 1, 5 },
                { UNIT_SERVER_RESPOND, 2, 5 },
                { UNIT_SERVER_COMMIT, 3, 5 },
        };
        struct ordered o;

        ordered_setup(&o);
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
                for (int state = 0; state < steps[i].states; state++) {
                        bool changed = false;
                        int r = run_in_state(&o, steps[i].step, state, &changed);

                        if (state == steps[i].allowed) {
                                ck_assert_msg(r == 0, "step %d in its own state %d: %d", steps[i].step, state, r);
                                ck_assert_msg(changed, "step %d: success changed nothing", steps[i].step);
                        } else {
                                ck_assert_msg(r == -EINVAL, "step %d in state %d: %d, want -EINVAL", steps[i].step, state, r);
                                ck_assert_msg(!changed, "step %d in state %d: changed the state", steps[i].step, state);
                        }
                }
        ordered_free(&o);
}
END_TEST

START_TEST(test_session_key_only_when_done) {
        struct ordered o;

        ordered_setup(&o);
        for (int s = 0; s < 3; s++)
                ck_assert_msg(hs_device_session_key(&o.dev_at[s]) == NULL, "device state %d has a key", s);
        ck_assert_ptr_nonnull(hs_device_session_key(&o.dev_at[3]));
        for (int s = 0; s < 4; s++)
                ck_assert_msg(hs_server_session_key(&o.srv_at[s]) == NULL, "server state %d has a key", s);
        ck_assert_ptr_nonnull(hs_server_session_key(&o.srv_at[4]));
        ck_assert(memcmp(hs_device_session_key(&o.dev_at[3]), hs_server_session_key(&o.srv_at[4]), 32) == 0);
        ordered_free(&o);
}
END_TEST

/* A failed draw or a too-small output buffer fails the step and changes nothing. */
START_TEST(test_failures_change_nothing) {
        struct vault_params v = unit_params("fail", profiles[_i], 40, 16, 6, 3);
        uint8_t *keys = vault_random(NULL, &v), out[SV_FRAME_MAX];
        struct unit_replay dr, sr;
        struct hs_device dev_before;
        struct hs_server srv_before;
        struct unit_hs h;
        size_t len, size = vault_size(&v);
        static const uint16_t bad_idx[6] = { 0, 2, 1, 3, 4, 5 };
        struct challenge bad = unit_challenge(6, bad_idx);

        unit_replay_init(&dr, NULL);
        unit_replay_init(&sr, NULL);
        unit_hs_init(&h, &v, keys, NULL, &dr.rng, &sr.rng);

        /* M1 */
        memcpy(&dev_before, &h.dev, sizeof dev_before);
        dr.fail[HS_SESSION_ID] = -EIO;
        ck_assert_int_eq(hs_device_hello(&h.dev, out, sizeof out, &len), -EIO);
        ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
        dr.fail[HS_SESSION_ID] = 0;
        ck_assert_int_eq(hs_device_hello(&h.dev, out, 10, &len), -ENOBUFS);
        ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_HELLO), 0);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_HELLO), 0);

        /* M2: failed r1, failed C1, invalid injected C1, small buffer */
        memcpy(&srv_before, &h.srv, sizeof srv_before);
        sr.fail[HS_R1] = -EIO;
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_CHALLENGE), -EIO);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        sr.fail[HS_R1] = 0;
        sr.fail[HS_C1] = -EIO;
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_CHALLENGE), -EIO);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        sr.fail[HS_C1] = 0;
        unit_replay_challenge(&sr, HS_C1, &bad);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_CHALLENGE), -EINVAL);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        sr.have_challenge[HS_C1] = false;
        ck_assert_int_eq(hs_server_challenge(&h.srv, &v, keys, out, 20, &len), -ENOBUFS);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_CHALLENGE), 0);

        /* M3: failed t1, r2, C2; a C2 that overlaps C1 (hs_draw_challenge refuses it); small buffer */
        memcpy(&dev_before, &h.dev, sizeof dev_before);
        for (enum hs_value w = HS_T1; w <= HS_C2; w++) {
                dr.fail[w] = -EIO;
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), -EIO);
                ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
                dr.fail[w] = 0;
        }
        {
                /* C2 = C1: valid on its own, but not disjoint. */
                struct challenge overlap = h.srv.c1;

                unit_replay_challenge(&dr, HS_C2, &overlap);
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), -EINVAL);
                ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
                unit_replay_challenge(&dr, HS_C2, &bad);
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), -EINVAL);
                ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
                dr.have_challenge[HS_C2] = false;
        }
        ck_assert_int_eq(hs_device_respond(&h.dev, h.m2, h.m2_len, out, 50, &len), -ENOBUFS);
        ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), 0);

        /* M4: failed t2, small buffer; the next vault is not left behind */
        memcpy(&srv_before, &h.srv, sizeof srv_before);
        sr.fail[HS_T2] = -EIO;
        memset(h.srv_next, 0xa5, size);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), -EIO);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        for (size_t i = 0; i < size; i++)
                ck_assert_uint_eq(h.srv_next[i], 0xa5);
        sr.fail[HS_T2] = 0;
        ck_assert_int_eq(hs_server_respond(&h.srv, h.m3, h.m3_len, h.srv_next, out, 10, &len), -ENOBUFS);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        for (size_t i = 0; i < size; i++)
                ck_assert_msg(h.srv_next[i] == 0 || h.srv_next[i] == 0xa5, "next vault left at byte %zu", i);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), 0);

        /* M5: small buffer */
        memcpy(&dev_before, &h.dev, sizeof dev_before);
        ck_assert_int_eq(hs_device_confirm(&h.dev, h.m4, h.m4_len, h.dev_next, out, 19, &len), -ENOBUFS);
        ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
        ck_assert_ptr_null(hs_device_session_key(&h.dev));
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_CONFIRM), 0);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_COMMIT), 0);
        ck_assert(memcmp(h.dev_next, h.srv_next, size) == 0);
        unit_hs_free(&h);
        free(keys);
}
END_TEST

/* ---- tampering ------------------------------------------------------------------------ */

/* What a receiver must answer to frame with one bit flipped. */
static int flip_expected(const uint8_t *frame, size_t bit) {
        size_t byte = bit / 8;

        if (byte == 0)
                return -EPROTONOSUPPORT;
        if (byte == 1)
                return -EPROTO;
        if (byte < 4) {
                uint8_t f[2] = { frame[2], frame[3] };

                f[byte - 2] ^= (uint8_t) (1u << (bit % 8));
                return be16_get(f) > SV_BODY_MAX ? -EMSGSIZE : -EBADMSG;
        }
        return -EACCES;
}

START_TEST(test_bitflips) {
        uint8_t profile = profiles[_i];
        struct vault_params v = unit_params("flip", profile, 48, _i ? 32 : 16, 16, 77);
        uint8_t *keys = vault_random(NULL, &v), out[SV_FRAME_MAX], *next;
        size_t size = vault_size(&v), len;
        struct hs_server srv_before;
        struct hs_device dev_before;
        struct unit_hs h;
        uint8_t frame[SV_FRAME_MAX];

        next = malloc(size);
        ck_assert_ptr_nonnull(next);
        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_DEVICE_RESPOND);

        /* M3 at the server */
        memcpy(&srv_before, &h.srv, sizeof srv_before);
        for (size_t bit = 0; bit < 8 * h.m3_len; bit++) {
                int want = flip_expected(h.m3, bit), r;

                memcpy(frame, h.m3, h.m3_len);
                frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                memset(next, 0xa5, size);
                r = hs_server_respond(&h.srv, frame, h.m3_len, next, out, sizeof out, &len);
                ck_assert_msg(r == want, "M3 bit %zu: %d, want %d", bit, r, want);
                ck_assert_msg(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0, "M3 bit %zu changed the server", bit);
                ck_assert_msg(next[0] == 0xa5 && next[size - 1] == 0xa5, "M3 bit %zu wrote the next vault", bit);
        }
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), 0);

        /* M4 at the device */
        memcpy(&dev_before, &h.dev, sizeof dev_before);
        for (size_t bit = 0; bit < 8 * h.m4_len; bit++) {
                int want = flip_expected(h.m4, bit), r;

                memcpy(frame, h.m4, h.m4_len);
                frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                memset(next, 0xa5, size);
                r = hs_device_confirm(&h.dev, frame, h.m4_len, next, out, sizeof out, &len);
                ck_assert_msg(r == want, "M4 bit %zu: %d, want %d", bit, r, want);
                ck_assert_msg(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0, "M4 bit %zu changed the device", bit);
                ck_assert_msg(next[0] == 0xa5 && next[size - 1] == 0xa5, "M4 bit %zu wrote the next vault", bit);
        }
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_CONFIRM), 0);

        /* M5 at the server */
        memcpy(&srv_before, &h.srv, sizeof srv_before);
        for (size_t bit = 0; bit < 8 * h.m5_len; bit++) {
                int want = flip_expected(h.m5, bit), r;

                memcpy(frame, h.m5, h.m5_len);
                frame[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                r = hs_server_commit(&h.srv, frame, h.m5_len);
                ck_assert_msg(r == want, "M5 bit %zu: %d, want %d", bit, r, want);
                ck_assert_msg(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0, "M5 bit %zu changed the server", bit);
                ck_assert_ptr_null(hs_server_session_key(&h.srv));
        }
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_COMMIT), 0);
        ck_assert(memcmp(hs_device_session_key(&h.dev), hs_server_session_key(&h.srv), 32) == 0);
        ck_assert(memcmp(h.dev_next, h.srv_next, size) == 0);
        free(next);
        free(keys);
        unit_hs_free(&h);
}
END_TEST

/*
 * M3 built by hand with the real K3 and TH2, so that only the content is wrong: the
 * server must open it and still refuse it, with -EACCES, changing nothing.
 */
enum craft {
        CRAFT_VALID,
        CRAFT_OVERLAP_FIRST,
        CRAFT_OVERLAP_ALL,
        CRAFT_DUPLICATE,
        CRAFT_UNSORTED,
        CRAFT_OUT_OF_RANGE,
        CRAFT_INDEX_FFFF,
        CRAFT_COUNT_BYTE,
        CRAFT_WRONG_R1,
        CRAFT_WRONG_KEY,
        CRAFT_WRONG_TH2,
        CRAFT_TRAILING_PT,
        CRAFT_MAX,
};

static const char *const craft_names[CRAFT_MAX] = {
        "valid", "C2 shares C1's first index", "C2 = C1", "duplicate in C2", "unsorted C2",
        "index n in C2", "index 0xffff in C2", "count byte p-1", "wrong r1", "sealed under a wrong K3",
        "sealed under a wrong TH2", "plaintext one byte longer",
};

/* An M3 sealed as a device holding `keys` would, with z (SV_X25519_LEN bytes, kex x25519) or NULL. */
static size_t craft_m3(const struct unit_hs *h, const uint8_t *keys, const uint8_t *z, enum craft how,
                       struct unit_rng *g, uint8_t *out) {
        const struct vault_params *v = &h->params;
        struct msg_challenge chal;
        struct msg_response resp;
        uint8_t th2[32], x1[SV_KEY_MAX], k3[32], pt[SV_RESPONSE_PT_MAX + 1];
        uint8_t body[SV_RESPONSE_PT_MAX + SV_TAG_LEN + 1];
        const void *pieces[] = { h->m1, h->m2 };
        const size_t lens[] = { h->m1_len, h->m2_len };
        size_t pt_len, k3_len, len;

        ck_assert_int_eq(wire_decode_challenge(h->m2, h->m2_len, v, &chal), 0);
        ck_assert_int_eq(crypto_sha256_v(pieces, lens, 2, th2), 0);
        vault_combine(keys, v, &chal.c1, x1);
        if (how == CRAFT_WRONG_KEY)
                x1[0] ^= 1;
        ck_assert_int_eq(keysched_k3(v->profile, th2, x1, v->m, z, z ? SV_X25519_LEN : 0, k3, &k3_len), 0);

        memcpy(resp.r1, chal.r1, sizeof resp.r1);
        if (how == CRAFT_WRONG_R1)
                resp.r1[15] ^= 0x40;
        unit_rng_bytes(g, resp.t1, sizeof resp.t1);
        unit_rng_bytes(g, resp.r2, sizeof resp.r2);
        ck_assert_int_eq(unit_rng_challenge(g, v->n, v->p, &chal.c1, &resp.c2), 0);
        switch (how) {
        case CRAFT_OVERLAP_FIRST: {
                /* Replace one index by C1's first, keeping C2 sorted and duplicate-free. */
                struct challenge c = resp.c2;
                unsigned k = 0;

                for (unsigned i = 0; i < c.p; i++)
                        if (c.idx[i] < chal.c1.idx[0])
                                k = i + 1;
                if (k == c.p)
                        k--;
                c.idx[k] = chal.c1.idx[0];
                for (unsigned i = 1; i < c.p; i++)
                        for (unsigned j = i; j > 0 && c.idx[j - 1] > c.idx[j]; j--) {
                                uint16_t t = c.idx[j];

                                c.idx[j] = c.idx[j - 1];
                                c.idx[j - 1] = t;
                        }
                ck_assert_int_eq(challenge_validate(&c, v->n, v->p), 0);
                ck_assert_int_eq(challenge_disjoint(&c, &chal.c1), -EBADMSG);
                resp.c2 = c;
                break;
        }
        case CRAFT_OVERLAP_ALL: resp.c2 = chal.c1; break;
        case CRAFT_DUPLICATE: resp.c2.idx[1] = resp.c2.idx[0]; break;
        case CRAFT_UNSORTED: {
                uint16_t t = resp.c2.idx[0];

                resp.c2.idx[0] = resp.c2.idx[1];
                resp.c2.idx[1] = t;
                break;
        }
        case CRAFT_OUT_OF_RANGE: resp.c2.idx[v->p - 1] = v->n; break;
        case CRAFT_INDEX_FFFF: resp.c2.idx[v->p - 1] = 0xffff; break;
        default: break;
        }
        ck_assert_int_eq(wire_encode_response_pt(&resp, pt, sizeof pt, &pt_len), 0);
        ck_assert_uint_eq(pt_len, vault_body_len(SV_MSG_RESPONSE, v) - SV_TAG_LEN);
        if (how == CRAFT_COUNT_BYTE)
                pt[64] = (uint8_t) (v->p - 1);
        if (how == CRAFT_TRAILING_PT)
                pt[pt_len++] = 0;
        if (how == CRAFT_WRONG_TH2)
                th2[31] ^= 1;
        ck_assert_int_eq(keysched_seal(k3, k3_len, th2, pt, pt_len, body), 0);
        ck_assert_int_eq(wire_encode_sealed(SV_MSG_RESPONSE, body, pt_len + SV_TAG_LEN, out, SV_FRAME_MAX, &len), 0);
        return len;
}

START_TEST(test_crafted_m3) {
        uint8_t profile = profiles[_i];
        struct vault_params v = unit_params("craft", profile, 20, 16, 5, 12);
        uint8_t *keys = vault_random(NULL, &v), frame[SV_FRAME_MAX], out[SV_FRAME_MAX], *next;
        struct hs_server before;
        struct unit_rng g;
        struct unit_hs h;
        size_t len, out_len;

        unit_rng_init(&g, "crafted_m3");
        next = malloc(vault_size(&v));
        ck_assert_ptr_nonnull(next);
        for (int round = 0; round < 20; round++) {
                unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_SERVER_CHALLENGE);
                memcpy(&before, &h.srv, sizeof before);
                for (int how = CRAFT_MAX - 1; how >= 0; how--) {
                        int want = how == CRAFT_VALID ? 0 : how == CRAFT_TRAILING_PT ? -EBADMSG : -EACCES, r;

                        len = craft_m3(&h, keys, NULL, how, &g, frame);
                        r = hs_server_respond(&h.srv, frame, len, next, out, sizeof out, &out_len);
                        unit_assert(r == want, "round %d %s: %d, want %d", round, craft_names[how], r, want);
                        if (r < 0)
                                unit_assert(memcmp(&h.srv, &before, sizeof before) == 0, "%s changed the server",
                                            craft_names[how]);
                }
                /* The valid one was last: the server moved on. */
                ck_assert_uint_eq(h.srv.state, HS_SERVER_CONFIRM_SENT);
                unit_hs_free(&h);
        }
        free(next);
        free(keys);
}
END_TEST

/* An old message replayed into a new handshake with the same vault fails authentication. */
START_TEST(test_replays) {
        struct vault_params v = unit_params("replay", profiles[_i], 64, 16, 8, 0);
        uint8_t *keys = vault_random(NULL, &v), out[SV_FRAME_MAX], *next;
        struct unit_hs old, cur;
        struct hs_server srv_before;
        struct hs_device dev_before;
        size_t len;

        next = malloc(vault_size(&v));
        ck_assert_ptr_nonnull(next);
        unit_hs_init(&old, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&old, UNIT_STEPS);

        unit_hs_init(&cur, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&cur, UNIT_SERVER_CHALLENGE);
        /* The old M3 (right size, right vault, wrong transcript) at the server. */
        memcpy(&srv_before, &cur.srv, sizeof srv_before);
        ck_assert_int_eq(hs_server_respond(&cur.srv, old.m3, old.m3_len, next, out, sizeof out, &len), -EACCES);
        ck_assert(memcmp(&cur.srv, &srv_before, sizeof srv_before) == 0);
        ck_assert_int_eq(unit_hs_step(&cur, UNIT_DEVICE_RESPOND), 0);
        ck_assert_int_eq(unit_hs_step(&cur, UNIT_SERVER_RESPOND), 0);
        /* The old M4 at the device: the server knows the vault, but this is not its answer. */
        memcpy(&dev_before, &cur.dev, sizeof dev_before);
        memset(next, 0xa5, vault_size(&v));
        ck_assert_int_eq(hs_device_confirm(&cur.dev, old.m4, old.m4_len, next, out, sizeof out, &len), -EACCES);
        ck_assert(memcmp(&cur.dev, &dev_before, sizeof dev_before) == 0);
        ck_assert_uint_eq(next[0], 0xa5);
        ck_assert_int_eq(unit_hs_step(&cur, UNIT_DEVICE_CONFIRM), 0);
        /* The old M5 at the server. */
        memcpy(&srv_before, &cur.srv, sizeof srv_before);
        ck_assert_int_eq(hs_server_commit(&cur.srv, old.m5, old.m5_len), -EACCES);
        ck_assert(memcmp(&cur.srv, &srv_before, sizeof srv_before) == 0);
        ck_assert_int_eq(unit_hs_step(&cur, UNIT_SERVER_COMMIT), 0);
        ck_assert(memcmp(hs_device_session_key(&cur.dev), hs_device_session_key(&old.dev), 32) != 0);
        unit_hs_free(&old);
        unit_hs_free(&cur);
        free(next);
        free(keys);
}
END_TEST

/* ---- decoys, parameters, epochs, ERROR ------------------------------------------------ */

START_TEST(test_decoy) {
        struct vault_params v = unit_params("ghost", profiles[_i], SV_DEFAULT_N, 16, SV_DEFAULT_P, 0);
        uint8_t *keys = vault_random(NULL, &v), frame[SV_FRAME_MAX];
        struct unit_hs h, real;
        struct hs_server before;
        struct msg_challenge chal;
        size_t len, real_m2_len;
        int r;

        /* A real M2 of the same shape, for its length. */
        unit_hs_init(&real, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&real, UNIT_SERVER_CHALLENGE);
        real_m2_len = real.m2_len;
        unit_hs_free(&real);

        for (int round = 0; round < 50; round++) {
                unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_SERVER_HELLO);
                r = hs_server_challenge(&h.srv, NULL, NULL, h.m2, sizeof h.m2, &h.m2_len);
                ck_assert_int_eq(r, 0);
                ck_assert(h.srv.decoy);
                ck_assert_uint_eq(h.m2_len, real_m2_len);
                ck_assert_int_eq(wire_decode_challenge(h.m2, h.m2_len, &v, &chal), 0);
                /* The device cannot tell and answers. */
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), 0);
                memcpy(&before, &h.srv, sizeof before);
                ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), -EACCES);
                ck_assert(memcmp(&h.srv, &before, sizeof before) == 0);
                /* Wrong size or type still fails as malformed. */
                memcpy(frame, h.m3, h.m3_len);
                ck_assert_int_eq(hs_server_respond(&h.srv, frame, h.m3_len - 1, h.srv_next, frame, sizeof frame, &len),
                                 -EBADMSG);
                frame[1] = SV_MSG_CONFIRM;
                ck_assert_int_eq(hs_server_respond(&h.srv, frame, h.m3_len, h.srv_next, frame, sizeof frame, &len),
                                 -EPROTO);
                ck_assert_ptr_null(hs_server_session_key(&h.srv));
                unit_hs_free(&h);
        }
        free(keys);
}
END_TEST

START_TEST(test_decoy_shape) {
        static const struct {
                uint16_t n;
                uint8_t p;
                int want;
        } cases[] = {
                { 256, 16, 0 }, { 8, 4, 0 }, { 4096, 64, 0 }, { 7, 1, -EINVAL }, { 4097, 16, -EINVAL },
                { 256, 0, -EINVAL }, { 256, 65, -EINVAL }, { 8, 5, -EINVAL },
        };
        struct vault_params v = unit_params("shape", SV_PROFILE_HARDENED, 16, 16, 2, 0);
        uint8_t keys[16 * 16] = { 0 };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct unit_hs h;
                struct msg_challenge chal;
                int r;

                unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                hs_server_init(&h.srv, &hs_random_os, cases[i].n, cases[i].p);
                unit_hs_run_to(&h, UNIT_SERVER_HELLO);
                r = hs_server_challenge(&h.srv, NULL, NULL, h.m2, sizeof h.m2, &h.m2_len);
                ck_assert_msg(r == cases[i].want, "decoy n=%u p=%u: %d", cases[i].n, cases[i].p, r);
                if (r == 0) {
                        struct vault_params w = unit_params("shape", v.profile, cases[i].n, 16, cases[i].p, 0);

                        ck_assert_int_eq(wire_decode_challenge(h.m2, h.m2_len, &w, &chal), 0);
                }
                else
                        ck_assert_uint_eq(h.srv.state, HS_SERVER_HELLO_RECEIVED);
                unit_hs_free(&h);
        }
}
END_TEST

/* The device answers a decoy M2 (it cannot tell); the server refuses that M3 and changes nothing. */
static void assert_decoy_refused(struct unit_hs *h) {
        struct hs_server before;

        ck_assert_int_eq(unit_hs_step(h, UNIT_DEVICE_RESPOND), 0);
        memcpy(&before, &h->srv, sizeof before);
        ck_assert_int_eq(unit_hs_step(h, UNIT_SERVER_RESPOND), -EACCES);
        ck_assert(memcmp(&h->srv, &before, sizeof before) == 0);
        ck_assert_ptr_null(hs_server_session_key(&h->srv));
}

/*
 * A decoy with a vault (authserver's): M2 of the shape given, and the M3 is checked against that
 * vault exactly as a device's, then refused even when it verifies (here the device holds the
 * very keys), so that no decoy ever reaches M4. A shape of another profile than M1's, or an
 * invalid one, is refused and changes nothing.
 */
START_TEST(test_decoy_with_vault) {
        struct vault_params v = unit_params("nobody-1", profiles[_i], 64, 32, 4, 7), w;
        uint8_t *keys = vault_random(NULL, &v);
        struct hs_server before;
        struct msg_challenge chal;
        struct unit_hs h;

        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_SERVER_HELLO);
        memcpy(&before, &h.srv, sizeof before);
        w = v;
        w.profile = v.profile == SV_PROFILE_HARDENED ? SV_PROFILE_PAPER : SV_PROFILE_HARDENED;
        ck_assert_int_eq(hs_server_challenge_decoy(&h.srv, &w, keys, h.m2, sizeof h.m2, &h.m2_len), -EINVAL);
        w = v;
        w.p = 33;
        ck_assert_int_eq(hs_server_challenge_decoy(&h.srv, &w, keys, h.m2, sizeof h.m2, &h.m2_len), -EINVAL);
        ck_assert_int_eq(hs_server_challenge_decoy(&h.srv, &v, NULL, h.m2, sizeof h.m2, &h.m2_len), -EINVAL);
        ck_assert(memcmp(&h.srv, &before, sizeof before) == 0);

        /* The shape's id and epoch do not matter: M1's are used. */
        w = v;
        ck_assert_int_eq(vault_params_set_id(&w, "someone-else"), 0);
        w.epoch = 99;
        ck_assert_int_eq(hs_server_challenge_decoy(&h.srv, &w, keys, h.m2, sizeof h.m2, &h.m2_len), 0);
        ck_assert(h.srv.decoy);
        ck_assert_int_eq(wire_decode_challenge(h.m2, h.m2_len, &v, &chal), 0);
        assert_decoy_refused(&h);
        unit_hs_free(&h);
        free(keys);
}
END_TEST

START_TEST(test_params_must_match_hello) {
        struct vault_params v = unit_params("match-me", profiles[_i], 32, 16, 4, 5);
        uint8_t *keys = vault_random(NULL, &v);
        const struct {
                const char *name;
                int field;
        } cases[] = {
                { "epoch - 1", 0 }, { "epoch + 1", 1 }, { "other profile", 2 }, { "other id", 3 },
                { "id prefix", 4 }, { "id longer", 5 }, { "invalid n", 6 }, { "no keys", 7 },
        };
        struct hs_server before;
        struct unit_hs h;

        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_SERVER_HELLO);
        memcpy(&before, &h.srv, sizeof before);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct vault_params w = v;
                const uint8_t *k = keys;
                int r;

                switch (cases[i].field) {
                case 0: w.epoch--; break;
                case 1: w.epoch++; break;
                case 2: w.profile = w.profile == SV_PROFILE_HARDENED ? SV_PROFILE_PAPER : SV_PROFILE_HARDENED; break;
                case 3: ck_assert_int_eq(vault_params_set_id(&w, "match-mE"), 0); break;
                case 4: ck_assert_int_eq(vault_params_set_id(&w, "match-m"), 0); break;
                case 5: ck_assert_int_eq(vault_params_set_id(&w, "match-me2"), 0); break;
                case 6: w.n = 7; break;
                case 7: k = NULL; break;
                }
                r = hs_server_challenge(&h.srv, &w, k, h.m2, sizeof h.m2, &h.m2_len);
                ck_assert_msg(r == -EINVAL, "%s: %d", cases[i].name, r);
                ck_assert_msg(memcmp(&h.srv, &before, sizeof before) == 0, "%s: changed the server", cases[i].name);
        }
        /* The right parameters still work after all that. */
        unit_hs_run(&h, UNIT_SERVER_CHALLENGE, UNIT_STEPS);
        unit_hs_free(&h);
        free(keys);
}
END_TEST

START_TEST(test_epoch_limits) {
        struct vault_params v = unit_params("old-timer", profiles[_i], 16, 16, 2, UINT64_MAX);
        uint8_t *keys = vault_random(NULL, &v), m1[SV_HELLO_FRAME_MAX], m2[SV_FRAME_MAX];
        struct hs_device before;
        struct unit_hs h;
        struct msg_hello hello = { .profile = v.profile, .id_len = v.id_len, .epoch = UINT64_MAX };
        size_t len;

        /* The device will not start a handshake it cannot finish. */
        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        memcpy(&before, &h.dev, sizeof before);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_HELLO), -EOVERFLOW);
        ck_assert(memcmp(&h.dev, &before, sizeof before) == 0);

        /* A server given such an M1 (a foreign device) refuses that vault, but can decoy. */
        memcpy(hello.device_id, v.device_id, v.id_len);
        ck_assert_int_eq(wire_encode_hello(&hello, m1, sizeof m1, &len), 0);
        ck_assert_int_eq(hs_server_hello(&h.srv, m1, len, NULL), 0);
        ck_assert_int_eq(hs_server_challenge(&h.srv, &v, keys, m2, sizeof m2, &len), -EINVAL);
        ck_assert_int_eq(hs_server_challenge(&h.srv, NULL, NULL, m2, sizeof m2, &len), 0);
        unit_hs_free(&h);

        /* UINT64_MAX - 1 is the last epoch that can advance. */
        v.epoch = UINT64_MAX - 1;
        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        unit_hs_run_to(&h, UNIT_STEPS);
        ck_assert(memcmp(h.dev_next, h.srv_next, vault_size(&v)) == 0);
        unit_hs_free(&h);

        /* Invalid device parameters never reach the wire. */
        v.epoch = 0;
        v.p = 9;        /* 2p > n */
        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_HELLO), -EINVAL);
        ck_assert_uint_eq(h.dev.state, HS_DEVICE_INIT);
        unit_hs_free(&h);
        free(keys);
}
END_TEST

START_TEST(test_device_gets_error) {
        struct vault_params v = unit_params("refused", SV_PROFILE_HARDENED, 16, 16, 2, 0);
        uint8_t *keys = vault_random(NULL, &v), err[SV_ERROR_FRAME_LEN], out[SV_FRAME_MAX], next[16 * 16];
        struct hs_device before;
        size_t len, out_len;

        for (uint8_t code = 1; code <= 4; code++)
                for (int at = 0; at < 2; at++) {
                        struct unit_hs h;
                        int r;

                        ck_assert_int_eq(wire_encode_error(code, err, sizeof err, &len), 0);
                        unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                        unit_hs_run_to(&h, at == 0 ? UNIT_SERVER_CHALLENGE : UNIT_SERVER_RESPOND);
                        memcpy(&before, &h.dev, sizeof before);
                        memset(next, 0xa5, sizeof next);
                        if (at == 0)
                                r = hs_device_respond(&h.dev, err, len, out, sizeof out, &out_len);
                        else
                                r = hs_device_confirm(&h.dev, err, len, next, out, sizeof out, &out_len);
                        ck_assert_msg(r == -ECONNREFUSED, "code %u at M%d: %d", code, at ? 4 : 2, r);
                        ck_assert_uint_eq(h.dev.peer_error, code);
                        ck_assert_uint_eq(next[0], 0xa5);
                        ck_assert_ptr_null(hs_device_session_key(&h.dev));
                        /* Nothing else moved. */
                        h.dev.peer_error = 0;
                        ck_assert(memcmp(&h.dev, &before, sizeof before) == 0);
                        unit_hs_free(&h);
                }
        free(keys);
}
END_TEST

/*
 * A server with the wrong vault. Entirely wrong: it cannot open M3. Wrong in one key of
 * C2 only: it opens M3 but cannot build M4, and the device notices. Wrong in a key that
 * neither challenge names: the handshake succeeds, but the next vaults differ, so the
 * following handshake fails.
 */
START_TEST(test_wrong_server_vault) {
        uint8_t profile = profiles[_i];
        struct vault_params v = unit_params("mismatch", profile, 24, 16, 4, 100);
        static const uint16_t c1_idx[4] = { 0, 1, 2, 3 }, c2_idx[4] = { 4, 5, 6, 7 };
        struct challenge c1 = unit_challenge(4, c1_idx), c2 = unit_challenge(4, c2_idx);
        size_t size = vault_size(&v);
        uint8_t *keys = vault_random(NULL, &v), *other = vault_random(NULL, &v);
        struct unit_replay dr, sr;
        struct hs_device dev_before;
        struct hs_server srv_before;
        struct unit_hs h;

        /* Entirely different. */
        unit_hs_init(&h, &v, keys, other, NULL, NULL);
        unit_hs_run_to(&h, UNIT_DEVICE_RESPOND);
        memcpy(&srv_before, &h.srv, sizeof srv_before);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), -EACCES);
        ck_assert(memcmp(&h.srv, &srv_before, sizeof srv_before) == 0);
        unit_hs_free(&h);

        unit_replay_init(&dr, NULL);
        unit_replay_init(&sr, NULL);
        unit_replay_challenge(&sr, HS_C1, &c1);
        unit_replay_challenge(&dr, HS_C2, &c2);

        /* Key 6 (in C2) differs. */
        memcpy(other, keys, size);
        other[6 * 16 + 3] ^= 0x10;
        unit_hs_init(&h, &v, keys, other, &dr.rng, &sr.rng);
        unit_hs_run_to(&h, UNIT_SERVER_RESPOND);
        memcpy(&dev_before, &h.dev, sizeof dev_before);
        memset(h.dev_next, 0xa5, size);
        ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_CONFIRM), -EACCES);
        ck_assert(memcmp(&h.dev, &dev_before, sizeof dev_before) == 0);
        ck_assert_uint_eq(h.dev_next[0], 0xa5);
        ck_assert_ptr_null(hs_device_session_key(&h.dev));
        unit_hs_free(&h);

        /* Key 20 (in neither) differs. */
        memcpy(other, keys, size);
        other[20 * 16] ^= 0x01;
        unit_hs_init(&h, &v, keys, other, &dr.rng, &sr.rng);
        unit_hs_run_to(&h, UNIT_STEPS);
        ck_assert(memcmp(hs_device_session_key(&h.dev), hs_server_session_key(&h.srv), 32) == 0);
        ck_assert_msg(memcmp(h.dev_next, h.srv_next, size) != 0, "next vaults agree although the vaults did not");
        /* Both updates read the whole vault, so every next key differs. */
        ck_assert(all_keys_differ(h.dev_next, h.srv_next, &v));
        {
                struct vault_params w = v;
                struct unit_hs h2;

                w.epoch++;
                /* A fixed C1 with one key from each 16-byte quarter of a 64-byte partition: with
                 * a random C1 the paper update's repeating mask can cancel in X(C1) (its linear
                 * weakness), so desynchronised paper vaults may still agree on K3. */
                unit_hs_init(&h2, &w, h.dev_next, h.srv_next, &dr.rng, &sr.rng);
                unit_hs_run_to(&h2, UNIT_DEVICE_RESPOND);
                ck_assert_int_eq(unit_hs_step(&h2, UNIT_SERVER_RESPOND), -EACCES);
                unit_hs_free(&h2);
        }
        unit_hs_free(&h);
        free(keys);
        free(other);
}
END_TEST

/* A device with the wrong vault fails at the server, never later. */
START_TEST(test_wrong_device_vault) {
        struct vault_params v = unit_params("imposter", profiles[_i], 24, 32, 4, 1);
        uint8_t *keys = vault_random(NULL, &v), *other = malloc(vault_size(&v));
        struct unit_hs h;

        ck_assert_ptr_nonnull(other);
        for (int k = 0; k < v.n; k++) {
                /* Flip one key at a time; the server refuses M3 whenever it is in C1. */
                static const uint16_t c1_idx[4] = { 2, 9, 15, 23 };
                struct challenge c1 = unit_challenge(4, c1_idx);
                struct unit_replay sr;
                bool in_c1 = k == 2 || k == 9 || k == 15 || k == 23;
                int r;

                memcpy(other, keys, vault_size(&v));
                other[(size_t) k * v.m + 31] ^= 0x80;
                unit_replay_init(&sr, NULL);
                unit_replay_challenge(&sr, HS_C1, &c1);
                unit_hs_init(&h, &v, other, keys, NULL, &sr.rng);
                unit_hs_run_to(&h, UNIT_DEVICE_RESPOND);
                r = unit_hs_step(&h, UNIT_SERVER_RESPOND);
                ck_assert_msg(r == (in_c1 ? -EACCES : 0), "key %d (%s C1): %d", k, in_c1 ? "in" : "not in", r);
                unit_hs_free(&h);
        }
        free(keys);
        free(other);
}
END_TEST

/* ---- Revision 1.1 §10: the X25519 key share ---- */

static struct vault_params kex_params(const char *id, uint16_t n, uint8_t p, uint64_t epoch) {
        struct vault_params v = unit_params(id, SV_PROFILE_HARDENED, n, 16, p, epoch);

        v.kex = SV_KEX_X25519;
        ck_assert_int_eq(vault_params_validate(&v), 0);
        return v;
}

/* A full x25519 handshake: both sides agree on the session key and the next vault, the
 * shares are on the wire, e_dev is gone once Z is computed and Z once S is derived (the
 * server never keeps e_srv). The same random values without the share give other keys. */
START_TEST(test_kex_handshake) {
        struct vault_params v = kex_params("fs-device", 64, 8, 3), w = v;
        uint8_t *keys = vault_random(NULL, &v), session[SV_KEY_LEN], *next = NULL;
        struct unit_rng gd, gs;
        struct unit_replay dr, sr;
        struct unit_hs h;

        for (int round = 0; round < 20; round++) {
                unit_rng_init(&gd, "kex-device");
                unit_rng_init(&gs, "kex-server");
                unit_replay_init(&dr, &gd);
                unit_replay_init(&sr, &gs);
                unit_hs_init(&h, &v, keys, NULL, round == 0 ? &dr.rng : NULL, round == 0 ? &sr.rng : NULL);
                unit_hs_run_to(&h, UNIT_SERVER_HELLO);
                ck_assert_uint_eq(h.m1_len, SV_HEADER_LEN + vault_body_len(SV_MSG_HELLO, &v));
                ck_assert_uint_eq(h.hello.kex, SV_KEX_X25519);
                ck_assert(h.dev.kex.armed);
                ck_assert(!unit_is_zero(h.dev.kex.e, sizeof h.dev.kex.e));
                ck_assert(memcmp(h.hello.share, h.dev.kex.share, SV_X25519_LEN) == 0);
                unit_hs_run(&h, UNIT_SERVER_CHALLENGE, UNIT_SERVER_CHALLENGE);
                ck_assert_uint_eq(h.m2_len, SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, &v));
                ck_assert(!h.srv.decoy);
                ck_assert(!unit_is_zero(h.srv.z, sizeof h.srv.z));
                unit_hs_run(&h, UNIT_DEVICE_RESPOND, UNIT_DEVICE_RESPOND);
                /* e_dev wiped at Z; Z the same on both sides until S. */
                ck_assert(!h.dev.kex.armed);
                ck_assert(unit_is_zero(&h.dev.kex, sizeof h.dev.kex));
                ck_assert(memcmp(h.dev.z, h.srv.z, SV_X25519_LEN) == 0);
                unit_hs_run(&h, UNIT_SERVER_RESPOND, UNIT_SERVER_RESPOND);
                ck_assert(unit_is_zero(h.srv.z, sizeof h.srv.z));
                unit_hs_run(&h, UNIT_DEVICE_CONFIRM, UNIT_SERVER_COMMIT);
                ck_assert(unit_is_zero(h.dev.z, sizeof h.dev.z));
                ck_assert(memcmp(hs_device_session_key(&h.dev), hs_server_session_key(&h.srv), SV_KEY_LEN) == 0);
                ck_assert(memcmp(h.dev_next, h.srv_next, vault_size(&v)) == 0);
                ck_assert(all_keys_differ(h.dev_next, keys, &v));
                if (round == 0) {
                        ck_assert_uint_eq(dr.calls[HS_E_DEV], 1);
                        ck_assert_uint_eq(sr.calls[HS_E_SRV], 1);
                        memcpy(session, hs_device_session_key(&h.dev), sizeof session);
                        next = unit_dup(h.dev_next, vault_size(&v));
                }
                unit_hs_free(&h);
        }

        /* Same draws without the share: Z is what changes the keys. */
        w.kex = SV_KEX_NONE;
        unit_rng_init(&gd, "kex-device");
        unit_rng_init(&gs, "kex-server");
        unit_replay_init(&dr, &gd);
        unit_replay_init(&sr, &gs);
        unit_hs_init(&h, &w, keys, NULL, &dr.rng, &sr.rng);
        unit_hs_run_to(&h, UNIT_SERVER_COMMIT);
        ck_assert(memcmp(hs_device_session_key(&h.dev), session, sizeof session) != 0);
        ck_assert_ptr_nonnull(next);
        ck_assert(memcmp(h.dev_next, next, vault_size(&v)) != 0);
        unit_hs_free(&h);
        free(next);
        free(keys);
}
END_TEST

/* The M1 of `h` with its share removed (strip) or a random one added, length fixed. */
static void m1_reshape(struct unit_hs *h, bool strip) {
        if (strip) {
                ck_assert_uint_gt(h->m1_len, SV_HEADER_LEN + SV_X25519_LEN);
                h->m1_len -= SV_X25519_LEN;
        } else {
                ck_assert_int_eq(crypto_random(h->m1 + h->m1_len, SV_X25519_LEN), 0);
                h->m1_len += SV_X25519_LEN;
        }
        be16_put(h->m1 + 2, (uint16_t) (h->m1_len - SV_HEADER_LEN));
}

/*
 * §10, no downgrade: an M1 whose share does not match the enrolled kex (added to a kex none
 * device's M1, or stripped from a kex x25519 device's) gets a decoy M2 of M1's shape, and the
 * M3 that answers it is refused, even the M3 of a party that holds the vault and computes
 * every key right for the M1 it sent. For an unknown device the decoy M2 carries a share
 * exactly when M1 has one.
 */
START_TEST(test_kex_mismatch_decoy) {
        struct vault_params x = kex_params("switch-1", 32, 4, 9), none = x;
        uint8_t *keys = vault_random(NULL, &x);
        struct msg_challenge chal;
        struct unit_hs h;

        none.kex = SV_KEX_NONE;
        for (int dir = 0; dir < 2; dir++) {
                /* dir 0: the device has the share, the server enrolled none; dir 1: the reverse. */
                const struct vault_params *dv = dir == 0 ? &x : &none, *sv = dir == 0 ? &none : &x;

                for (int round = 0; round < 20; round++) {
                        unit_hs_init(&h, dv, keys, NULL, NULL, NULL);
                        h.srv_params = *sv;
                        unit_hs_run_to(&h, UNIT_SERVER_CHALLENGE);
                        ck_assert(h.srv.decoy);
                        /* M2 has M1's shape: the device (which holds the vault) answers. */
                        ck_assert_uint_eq(h.m2_len, SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, dv));
                        assert_decoy_refused(&h);
                        unit_hs_free(&h);
                }
        }

        /* A man in the middle strips the share from an x25519 device's M1 (dir 0) or adds one
         * to a kex none device's M1 (dir 1), and answers the M2 as a kex none device holding
         * the vault would: the server, which enrolled the device's true kex, refuses at M3. */
        for (int dir = 0; dir < 2; dir++) {
                const struct vault_params *dv = dir == 0 ? &x : &none;

                unit_hs_init(&h, dv, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_DEVICE_HELLO);
                m1_reshape(&h, dir == 0);
                unit_hs_run(&h, UNIT_SERVER_HELLO, UNIT_SERVER_CHALLENGE);
                ck_assert(h.srv.decoy);
                ck_assert_uint_eq(h.hello.kex, dir == 0 ? SV_KEX_NONE : SV_KEX_X25519);
                /* The true device cannot read the reshaped M2. */
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), -EBADMSG);
                if (dir == 0) {
                        struct unit_rng g;

                        unit_rng_init(&g, "kex-strip");
                        h.params = none;        /* what the attacker answers as */
                        h.m3_len = craft_m3(&h, keys, NULL, CRAFT_VALID, &g, h.m3);
                        ck_assert_int_eq(unit_hs_step(&h, UNIT_SERVER_RESPOND), -EACCES);
                }
                unit_hs_free(&h);
        }

        /* Unknown device: a share in the decoy M2 exactly when M1 has one. */
        for (int with = 0; with < 2; with++) {
                const struct vault_params *dv = with ? &x : &none;

                unit_hs_init(&h, dv, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_SERVER_HELLO);
                hs_server_init(&h.srv, &hs_random_os, x.n, x.p);
                ck_assert_int_eq(hs_server_hello(&h.srv, h.m1, h.m1_len, NULL), 0);
                ck_assert_int_eq(hs_server_challenge(&h.srv, NULL, NULL, h.m2, sizeof h.m2, &h.m2_len), 0);
                ck_assert_uint_eq(h.m2_len, SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, dv));
                ck_assert_int_eq(wire_decode_challenge(h.m2, h.m2_len, dv, &chal), 0);
                if (with)
                        ck_assert(!kex_share_is_small_order(chal.share));
                assert_decoy_refused(&h);
                unit_hs_free(&h);
                /* The same with a decoy vault (authserver's decoy). */
                unit_hs_init(&h, dv, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_SERVER_HELLO);
                ck_assert_int_eq(hs_server_challenge_decoy(&h.srv, &none, keys, h.m2, sizeof h.m2, &h.m2_len), 0);
                ck_assert_uint_eq(h.m2_len, SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, dv));
                assert_decoy_refused(&h);
                unit_hs_free(&h);
        }
        free(keys);
}
END_TEST

/*
 * Every RFC 7748 small-order share. From the device: the server still sends a well-formed M2
 * and refuses M3, even an M3 sealed by a party that holds the vault and uses the Z = 0 that
 * such a share forces. From the server: the device aborts at M2 and changes nothing.
 */
START_TEST(test_kex_small_order) {
        struct vault_params v = kex_params("low-order", 32, 4, 0);
        uint8_t *keys = vault_random(NULL, &v), pts[UNIT_SMALL_ORDER_COUNT][32], zero[SV_X25519_LEN] = { 0 };
        struct msg_challenge chal;
        struct hs_device dbefore;
        struct unit_rng g;
        struct unit_hs h;

        unit_small_order_points(pts);
        unit_rng_init(&g, "kex-small-order");
        for (int i = 0; i < UNIT_SMALL_ORDER_COUNT; i++) {
                /* From the device. */
                unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_DEVICE_HELLO);
                memcpy(h.m1 + h.m1_len - SV_X25519_LEN, pts[i], SV_X25519_LEN);
                unit_hs_run(&h, UNIT_SERVER_HELLO, UNIT_SERVER_CHALLENGE);
                ck_assert_int_eq(wire_decode_challenge(h.m2, h.m2_len, &v, &chal), 0);
                ck_assert_msg(h.srv.decoy, "small-order share %d accepted", i);
                h.m3_len = craft_m3(&h, keys, zero, CRAFT_VALID, &g, h.m3);
                ck_assert_msg(unit_hs_step(&h, UNIT_SERVER_RESPOND) == -EACCES, "share %d: M3 with Z = 0 accepted", i);
                ck_assert_ptr_null(hs_server_session_key(&h.srv));
                unit_hs_free(&h);

                /* From the server. */
                unit_hs_init(&h, &v, keys, NULL, NULL, NULL);
                unit_hs_run_to(&h, UNIT_SERVER_CHALLENGE);
                memcpy(h.m2 + h.m2_len - SV_X25519_LEN, pts[i], SV_X25519_LEN);
                memcpy(&dbefore, &h.dev, sizeof dbefore);
                ck_assert_int_eq(unit_hs_step(&h, UNIT_DEVICE_RESPOND), -EKEYREJECTED);
                ck_assert(memcmp(&h.dev, &dbefore, sizeof dbefore) == 0);
                ck_assert_uint_eq(h.dev.state, HS_DEVICE_HELLO_SENT);
                hs_device_wipe(&h.dev);
                ck_assert(unit_is_zero(&h.dev, sizeof h.dev));
                unit_hs_free(&h);
        }
        free(keys);
}
END_TEST

static Suite *handshake_suite(void) {
        Suite *s = suite_create("handshake");
        TCase *tc = tcase_create("random");

        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_random_handshakes, 0, 3);
        suite_add_tcase(s, tc);

        tc = tcase_create("recomputed");
        tcase_add_loop_test(tc, test_recomputed, 0, 4);
        suite_add_tcase(s, tc);

        tc = tcase_create("rules");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_step_order);
        tcase_add_test(tc, test_session_key_only_when_done);
        tcase_add_loop_test(tc, test_failures_change_nothing, 0, 2);
        tcase_add_loop_test(tc, test_epoch_limits, 0, 2);
        tcase_add_test(tc, test_device_gets_error);
        tcase_add_loop_test(tc, test_params_must_match_hello, 0, 2);
        suite_add_tcase(s, tc);

        tc = tcase_create("attacks");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, test_bitflips, 0, 2);
        tcase_add_loop_test(tc, test_crafted_m3, 0, 2);
        tcase_add_loop_test(tc, test_replays, 0, 2);
        tcase_add_loop_test(tc, test_decoy, 0, 2);
        tcase_add_test(tc, test_decoy_shape);
        tcase_add_loop_test(tc, test_decoy_with_vault, 0, 2);
        tcase_add_loop_test(tc, test_wrong_server_vault, 0, 2);
        tcase_add_loop_test(tc, test_wrong_device_vault, 0, 2);
        suite_add_tcase(s, tc);

        tc = tcase_create("kex");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_kex_handshake);
        tcase_add_test(tc, test_kex_mismatch_decoy);
        tcase_add_test(tc, test_kex_small_order);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(handshake_suite());
}
