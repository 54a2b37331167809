/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "handshake.h"
#include "keysched.h"

void hs_server_init(struct hs_server *hs, const struct hs_random *rng, uint16_t decoy_n, uint8_t decoy_p) {
        *hs = (struct hs_server) {
                .state = HS_SERVER_INIT,
                .rng = rng,
                .decoy_n = decoy_n,
                .decoy_p = decoy_p,
        };
}

void hs_server_wipe(struct hs_server *hs) {
        OPENSSL_cleanse(hs, sizeof *hs);
}

static void server_publish(struct hs_server *hs, struct hs_server *next) {
        *hs = *next;
        hs_server_wipe(next);
}

int hs_server_hello(struct hs_server *hs, const uint8_t *m1, size_t len, struct msg_hello *ret) {
        struct msg_hello m;
        int r;

        if (hs->state != HS_SERVER_INIT)
                return -EINVAL;
        r = wire_decode_hello(m1, len, &m);
        if (r < 0)
                return r;
        memcpy(hs->ts.m1, m1, len);
        hs->ts.m1_len = len;
        hs->hello = m;
        hs->state = HS_SERVER_HELLO_RECEIVED;
        if (ret)
                *ret = m;
        return 0;
}

static bool params_match_hello(const struct vault_params *v, const struct msg_hello *h) {
        return vault_params_validate(v) >= 0 &&
                v->id_len == h->id_len &&
                memcmp(v->device_id, h->device_id, h->id_len) == 0 &&
                v->profile == h->profile &&
                v->epoch == h->epoch &&
                v->epoch != UINT64_MAX;
}

/*
 * §10 on the server: the share of M2 (drawn whenever M1 has one, decoy or not), then Z at
 * once, so that e_srv never outlives this function. A small-order share_dev gives no Z: the
 * M2 stays well-formed and the handshake fails at M3 like any decoy's.
 */
static int server_share(struct hs_server *next, struct msg_challenge *m) {
        struct kex k = { 0 };
        uint8_t e[SV_X25519_LEN];
        int r;

        r = hs_draw_bytes(next->rng, HS_E_SRV, e, sizeof e);
        if (r < 0)
                return r;
        r = kex_start(&k, e);
        if (r < 0)
                return r;
        m->kex = SV_KEX_X25519;
        memcpy(m->share, k.share, sizeof m->share);
        r = kex_finish(&k, next->hello.share, next->z);
        if (r == -EKEYREJECTED) {
                next->decoy = true;
                r = 0;
        }
        return r;
}

static int challenge(struct hs_server *hs, const struct vault_params *params, const uint8_t *keys, bool decoy,
                     uint8_t *out, size_t cap, size_t *ret_len) {
        struct hs_server next;
        struct msg_challenge m = { 0 };
        int r;

        next = *hs;
        next.decoy = decoy;
        if (params) {
                next.params = *params;
                next.keys = keys;
        }
        /* M2 has M1's shape; a vault of another kex gets a decoy (§10: no downgrade). */
        if (next.params.kex != next.hello.kex)
                next.decoy = true;
        next.params.kex = next.hello.kex;
        r = hs_draw_bytes(next.rng, HS_R1, m.r1, sizeof m.r1);
        if (r >= 0)
                r = hs_draw_challenge(next.rng, HS_C1,
                                      params ? params->n : next.decoy_n,
                                      params ? params->p : next.decoy_p, NULL, &m.c1);
        if (r >= 0 && next.hello.kex == SV_KEX_X25519)
                r = server_share(&next, &m);
        if (r >= 0)
                r = wire_encode_challenge(&m, next.ts.m2, sizeof next.ts.m2, &next.ts.m2_len);
        if (r >= 0 && next.ts.m2_len > cap)
                r = -ENOBUFS;
        if (r < 0) {
                hs_server_wipe(&next);
                return r;
        }
        memcpy(out, next.ts.m2, next.ts.m2_len);
        *ret_len = next.ts.m2_len;
        memcpy(next.r1, m.r1, sizeof next.r1);
        next.c1 = m.c1;
        next.state = HS_SERVER_CHALLENGE_SENT;
        server_publish(hs, &next);
        return 0;
}

/*
 * A decoy M2 looks like any other: random r1 and a random challenge of the server's
 * default shape. M1 thus reveals nothing about which devices exist, are revoked or are
 * out of step; the handshake fails at M3 instead.
 */
int hs_server_challenge(struct hs_server *hs, const struct vault_params *params, const uint8_t *keys,
                        uint8_t *out, size_t cap, size_t *ret_len) {
        if (hs->state != HS_SERVER_HELLO_RECEIVED)
                return -EINVAL;
        if (params && (!keys || !params_match_hello(params, &hs->hello)))
                return -EINVAL;
        if (!params) {
                /* The decoy's shape, as the profile M1 claims allows it. */
                const struct profile_info *pi = profile_find(hs->hello.profile, hs->hello.kex);

                if (!profile_n_valid(pi, hs->decoy_n) || !profile_p_valid(pi, hs->decoy_n, hs->decoy_p))
                        return -EINVAL;
        }
        return challenge(hs, params, keys, !params, out, cap, ret_len);
}

/*
 * A decoy that costs what a device costs: its M2 has the shape the caller chose (from the
 * enrolled fleet), and the M3 that answers it goes through exactly the checks of a device's
 * M3, against keys, a vault of that shape that no device holds. Only then is it refused, so
 * the time to ERROR 2 does not tell an unknown id from a device answered with a wrong vault.
 */
int hs_server_challenge_decoy(struct hs_server *hs, const struct vault_params *shape, const uint8_t *keys,
                              uint8_t *out, size_t cap, size_t *ret_len) {
        struct vault_params v;

        if (hs->state != HS_SERVER_HELLO_RECEIVED || !shape || !keys || shape->profile != hs->hello.profile)
                return -EINVAL;
        v = *shape;
        memcpy(v.device_id, hs->hello.device_id, hs->hello.id_len);
        v.device_id[hs->hello.id_len] = '\0';
        v.id_len = hs->hello.id_len;
        v.epoch = hs->hello.epoch;
        v.kex = hs->hello.kex;          /* §10: a share exactly when M1 has one */
        if (vault_params_validate(&v) < 0)
                return -EINVAL;
        return challenge(hs, &v, keys, true, out, cap, ret_len);
}

/*
 * A decoy's M3 fails like a real device's wrong M3 and after the same work: TH2, K3 and the
 * AEAD check, here under a random X1, so that the time to ERROR 2 does not tell a decoy
 * (an id that is not enrolled) from an enrolled device.
 */
#define DECOY_M 16      /* the default key size: the cost of K3 does not depend on it */

/* The M3 body a decoy without a vault expects: the claimed profile, the decoy's p. */
static size_t decoy_m3_len(const struct hs_server *hs) {
        return wire_body_len(SV_MSG_RESPONSE, &(struct wire_params) { .profile = hs->hello.profile,
                                                                      .kex = SV_KEX_NONE, .p = hs->decoy_p });
}

static int decoy_respond(const struct hs_server *hs, const uint8_t *body) {
        uint8_t th2[SV_HASH_LEN], x1[SV_KEY_MAX], k3[SV_KEY_LEN], pt[SV_RESPONSE_PT_MAX];
        size_t k3_len = 0, z_len = hs->params.kex == SV_KEX_X25519 ? SV_X25519_LEN : 0;

        if (crypto_random(x1, DECOY_M) >= 0 && hs_transcript_hash(&hs->ts, 2, th2) >= 0 &&
            keysched_k3(SV_PROFILE_HARDENED, th2, x1, DECOY_M, hs->z, z_len, k3, &k3_len) >= 0)
                (void) keysched_open(k3, k3_len, th2, body, decoy_m3_len(hs), pt);
        OPENSSL_cleanse(x1, sizeof x1);
        OPENSSL_cleanse(k3, sizeof k3);
        OPENSSL_cleanse(pt, sizeof pt);
        return -EACCES;
}

int hs_server_respond(struct hs_server *hs, const uint8_t *m3, size_t len, uint8_t *next_vault,
                      uint8_t *out, size_t cap, size_t *ret_len) {
        const struct vault_params *v = &hs->params;
        struct hs_server next;
        struct msg_response resp = { 0 };
        struct msg_confirm conf = { 0 };
        struct keysched_final fin = { 0 };
        const uint8_t *body;
        uint8_t th2[SV_HASH_LEN], th3[SV_HASH_LEN], th4[SV_HASH_LEN], x1[SV_KEY_MAX], x2[SV_KEY_MAX];
        uint8_t k3[SV_KEY_LEN], k4[SV_KEY_LEN], pt[SV_RESPONSE_PT_MAX];
        uint8_t cpt[SV_CONFIRM_PT_LEN], cbody[SV_CONFIRM_BODY_LEN];
        size_t k3_len = 0, k4_len = 0, cpt_len = 0, m3_body_len;
        size_t z_len = v->kex == SV_KEX_X25519 ? SV_X25519_LEN : 0;
        bool vault_written = false;
        int r;

        if (hs->state != HS_SERVER_CHALLENGE_SENT)
                return -EINVAL;
        if (hs->decoy && !hs->keys) {
                r = wire_decode_sealed(m3, len, SV_MSG_RESPONSE, decoy_m3_len(hs), &body);
                return r < 0 ? r : decoy_respond(hs, body);
        }
        m3_body_len = vault_body_len(SV_MSG_RESPONSE, v);
        r = wire_decode_sealed(m3, len, SV_MSG_RESPONSE, m3_body_len, &body);
        if (r < 0)
                return r;

        next = *hs;
        vault_combine(next.keys, v, &next.c1, x1);
        r = hs_transcript_hash(&next.ts, 2, th2);
        if (r >= 0)
                r = keysched_k3(v->profile, th2, x1, v->m, next.z, z_len, k3, &k3_len);
        if (r < 0)
                goto out;
        /* Every failure inside M3 is the same ERROR 2: nothing tells which check failed. */
        if (keysched_open(k3, k3_len, th2, body, m3_body_len, pt) < 0 ||
            wire_decode_response_pt(pt, m3_body_len - SV_TAG_LEN, v->n, v->p, &resp) < 0 ||
            CRYPTO_memcmp(resp.r1, next.r1, sizeof resp.r1) != 0 ||
            challenge_disjoint(&resp.c2, &next.c1) < 0) {
                r = -EACCES;
                goto out;
        }
        /* A decoy's vault is held by no device: this is not reached but by chance. */
        if (next.decoy) {
                r = -EACCES;
                goto out;
        }

        memcpy(next.ts.m3, m3, len);
        next.ts.m3_len = len;
        memcpy(conf.r2, resp.r2, sizeof conf.r2);
        vault_combine(next.keys, v, &resp.c2, x2);
        r = hs_draw_bytes(next.rng, HS_T2, conf.t2, sizeof conf.t2);
        if (r >= 0)
                r = hs_transcript_hash(&next.ts, 3, th3);
        if (r >= 0)
                r = keysched_k4(v->profile, th3, x2, v->m, resp.t1, next.z, z_len, k4, &k4_len);
        if (r >= 0)
                r = wire_encode_confirm_pt(&conf, cpt, sizeof cpt, &cpt_len);
        if (r >= 0)
                r = keysched_seal(k4, k4_len, th3, cpt, cpt_len, cbody);
        if (r >= 0)
                r = wire_encode_sealed(SV_MSG_CONFIRM, cbody, sizeof cbody,
                                       next.ts.m4, sizeof next.ts.m4, &next.ts.m4_len);
        if (r >= 0)
                r = hs_transcript_hash(&next.ts, 4, th4);
        if (r >= 0)
                r = keysched_finish(v->profile, th4, resp.t1, conf.t2, next.z, z_len, &fin);
        if (r >= 0)
                r = hs_next_vault(v, next.keys, &next.ts, fin.u, next_vault);
        vault_written = r >= 0;
        if (r >= 0 && next.ts.m4_len > cap)
                r = -ENOBUFS;
        if (r < 0)
                goto out;

        memcpy(out, next.ts.m4, next.ts.m4_len);
        *ret_len = next.ts.m4_len;
        memcpy(next.k5, fin.k5, sizeof next.k5);
        r = record_secret(fin.s, RECORD_C2S, next.c2s);
        if (r >= 0)
                r = record_secret(fin.s, RECORD_S2C, next.s2c);
        if (r < 0)
                goto out;
        memcpy(next.session_key, fin.session_key, sizeof next.session_key);
        if (next.trace) {
                memcpy(next.trace->th2, th2, sizeof th2);
                memcpy(next.trace->th3, th3, sizeof th3);
                memcpy(next.trace->th4, th4, sizeof th4);
                memcpy(next.trace->x1, x1, v->m);
                memcpy(next.trace->x2, x2, v->m);
                memcpy(next.trace->k3, k3, k3_len);
                next.trace->k3_len = k3_len;
                memcpy(next.trace->k4, k4, k4_len);
                next.trace->k4_len = k4_len;
                memcpy(next.trace->k5, fin.k5, sizeof fin.k5);
                if (z_len) {
                        memcpy(next.trace->share_dev, next.hello.share, sizeof next.hello.share);
                        memcpy(next.trace->share_srv, next.ts.m2 + next.ts.m2_len - SV_X25519_LEN, SV_X25519_LEN);
                        memcpy(next.trace->z, next.z, z_len);
                }
        }
        OPENSSL_cleanse(next.z, sizeof next.z);         /* §10: Z is wiped once S is derived */
        next.state = HS_SERVER_CONFIRM_SENT;
        server_publish(hs, &next);
out:
        if (r < 0 && vault_written)
                OPENSSL_cleanse(next_vault, vault_size(v));
        hs_server_wipe(&next);
        keysched_final_wipe(&fin);
        OPENSSL_cleanse(&resp, sizeof resp);
        OPENSSL_cleanse(&conf, sizeof conf);
        OPENSSL_cleanse(x1, sizeof x1);
        OPENSSL_cleanse(x2, sizeof x2);
        OPENSSL_cleanse(k3, sizeof k3);
        OPENSSL_cleanse(k4, sizeof k4);
        OPENSSL_cleanse(pt, sizeof pt);
        OPENSSL_cleanse(cpt, sizeof cpt);
        return r;
}

int hs_server_commit(struct hs_server *hs, const uint8_t *m5, size_t len) {
        const uint8_t *body;
        uint8_t th4[SV_HASH_LEN];
        int r;

        if (hs->state != HS_SERVER_CONFIRM_SENT)
                return -EINVAL;
        r = wire_decode_sealed(m5, len, SV_MSG_COMMIT, SV_COMMIT_BODY_LEN, &body);
        if (r < 0)
                return r;
        r = hs_transcript_hash(&hs->ts, 4, th4);
        if (r < 0)
                return r;
        if (keysched_open(hs->k5, sizeof hs->k5, th4, body, SV_COMMIT_BODY_LEN, NULL) < 0)
                return -EACCES;
        hs->state = HS_SERVER_DONE;
        return 0;
}

const uint8_t *hs_server_session_key(const struct hs_server *hs) {
        return hs->state == HS_SERVER_DONE ? hs->session_key : NULL;
}

int hs_server_channel_secrets(const struct hs_server *hs, uint8_t ret_c2s[RECORD_SECRET_LEN],
                              uint8_t ret_s2c[RECORD_SECRET_LEN]) {
        if (hs->state != HS_SERVER_DONE)
                return -EBUSY;
        memcpy(ret_c2s, hs->c2s, RECORD_SECRET_LEN);
        memcpy(ret_s2c, hs->s2c, RECORD_SECRET_LEN);
        return 0;
}
