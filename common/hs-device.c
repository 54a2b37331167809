/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "handshake.h"
#include "keysched.h"

void hs_device_init(struct hs_device *hs, const struct vault_params *params, const uint8_t *keys,
                    const struct hs_random *rng) {
        *hs = (struct hs_device) {
                .state = HS_DEVICE_INIT,
                .params = *params,
                .keys = keys,
                .rng = rng,
        };
}

void hs_device_wipe(struct hs_device *hs) {
        OPENSSL_cleanse(hs, sizeof *hs);
}

/* Steps work on a copy and publish it only on success, so a failed step changes nothing. */
static void device_publish(struct hs_device *hs, struct hs_device *next) {
        *hs = *next;
        hs_device_wipe(next);
}

static int copy_out(const uint8_t *frame, size_t len, uint8_t *out, size_t cap, size_t *ret_len) {
        if (len > cap)
                return -ENOBUFS;
        memcpy(out, frame, len);
        *ret_len = len;
        return 0;
}

/* A server may answer any step with ERROR: remember its code for the caller. */
static int device_check_error(struct hs_device *hs, const uint8_t *frame, size_t len) {
        uint8_t code;

        if (wire_frame_type(frame, len) != SV_MSG_ERROR)
                return 0;
        if (wire_decode_error(frame, len, &code) < 0)
                return -EBADMSG;
        hs->peer_error = code;
        return -ECONNREFUSED;
}

int hs_device_hello(struct hs_device *hs, uint8_t *out, size_t cap, size_t *ret_len) {
        struct hs_device next;
        struct msg_hello m = { 0 };
        int r;

        if (hs->state != HS_DEVICE_INIT)
                return -EINVAL;
        if (vault_params_validate(&hs->params) < 0)
                return -EINVAL;
        if (hs->params.epoch == UINT64_MAX)
                return -EOVERFLOW;

        next = *hs;
        m.profile = next.params.profile;
        m.id_len = next.params.id_len;
        memcpy(m.device_id, next.params.device_id, next.params.id_len);
        m.epoch = next.params.epoch;
        r = hs_draw_bytes(next.rng, HS_SESSION_ID, m.session_id, sizeof m.session_id);
        if (r >= 0 && next.params.kex == SV_KEX_X25519) {
                uint8_t e[SV_X25519_LEN];

                /* kex_start() takes e over and wipes it; a failed draw wiped it already. */
                r = hs_draw_bytes(next.rng, HS_E_DEV, e, sizeof e);
                if (r >= 0)
                        r = kex_start(&next.kex, e);
                if (r >= 0) {
                        m.kex = SV_KEX_X25519;
                        memcpy(m.share, next.kex.share, sizeof m.share);
                        if (next.trace)
                                memcpy(next.trace->share_dev, m.share, sizeof m.share);
                }
        }
        if (r >= 0)
                r = wire_encode_hello(&m, next.ts.m1, sizeof next.ts.m1, &next.ts.m1_len);
        if (r >= 0)
                r = copy_out(next.ts.m1, next.ts.m1_len, out, cap, ret_len);
        if (r < 0) {
                hs_device_wipe(&next);
                return r;
        }
        next.state = HS_DEVICE_HELLO_SENT;
        device_publish(hs, &next);
        return 0;
}

int hs_device_respond(struct hs_device *hs, const uint8_t *m2, size_t len,
                      uint8_t *out, size_t cap, size_t *ret_len) {
        const struct vault_params *v = &hs->params;
        struct hs_device next;
        struct msg_challenge chal;
        struct msg_response resp = { 0 };
        uint8_t th2[SV_HASH_LEN], th3[SV_HASH_LEN], x1[SV_KEY_MAX], x2[SV_KEY_MAX], k3[SV_KEY_LEN];
        uint8_t pt[SV_RESPONSE_PT_MAX], body[SV_RESPONSE_PT_MAX + SV_TAG_LEN];
        size_t k3_len = 0, pt_len = 0, z_len = v->kex == SV_KEX_X25519 ? SV_X25519_LEN : 0;
        int r;

        if (hs->state != HS_DEVICE_HELLO_SENT)
                return -EINVAL;
        r = device_check_error(hs, m2, len);
        if (r < 0)
                return r;
        r = wire_decode_challenge(m2, len, v, &chal);
        if (r < 0)
                return r;

        next = *hs;
        memcpy(next.ts.m2, m2, len);
        next.ts.m2_len = len;
        next.c1 = chal.c1;
        memcpy(resp.r1, chal.r1, sizeof resp.r1);
        /* §10: Z, then e_dev is gone (kex_finish() wipes it on every path); an all-zero Z
         * (a small-order share) ends the handshake here. */
        r = z_len ? kex_finish(&next.kex, chal.share, next.z) : 0;
        if (r < 0)
                goto out;
        r = hs_draw_bytes(next.rng, HS_T1, resp.t1, sizeof resp.t1);
        if (r >= 0)
                r = hs_draw_bytes(next.rng, HS_R2, resp.r2, sizeof resp.r2);
        if (r >= 0)
                r = hs_draw_challenge(next.rng, HS_C2, v->n, v->p, &chal.c1, &resp.c2);
        if (r < 0)
                goto out;

        vault_combine(next.keys, v, &chal.c1, x1);
        r = hs_transcript_hash(&next.ts, 2, th2);
        if (r >= 0)
                r = keysched_k3(v->profile, th2, x1, v->m, next.z, z_len, k3, &k3_len);
        if (r >= 0)
                r = wire_encode_response_pt(&resp, pt, sizeof pt, &pt_len);
        if (r >= 0)
                r = keysched_seal(k3, k3_len, th2, pt, pt_len, body);
        if (r >= 0)
                r = wire_encode_sealed(SV_MSG_RESPONSE, body, pt_len + SV_TAG_LEN,
                                       next.ts.m3, sizeof next.ts.m3, &next.ts.m3_len);
        if (r < 0)
                goto out;

        /* K4 depends only on what this side already knows once M3 is fixed. */
        vault_combine(next.keys, v, &resp.c2, x2);
        r = hs_transcript_hash(&next.ts, 3, th3);
        if (r >= 0)
                r = keysched_k4(v->profile, th3, x2, v->m, resp.t1, next.z, z_len, next.k4, &next.k4_len);
        if (r >= 0)
                r = copy_out(next.ts.m3, next.ts.m3_len, out, cap, ret_len);
        if (r < 0)
                goto out;

        memcpy(next.t1, resp.t1, sizeof next.t1);
        memcpy(next.r2, resp.r2, sizeof next.r2);
        if (next.trace) {
                memcpy(next.trace->th2, th2, sizeof th2);
                memcpy(next.trace->th3, th3, sizeof th3);
                memcpy(next.trace->x1, x1, v->m);
                memcpy(next.trace->x2, x2, v->m);
                memcpy(next.trace->k3, k3, k3_len);
                next.trace->k3_len = k3_len;
                memcpy(next.trace->k4, next.k4, next.k4_len);
                next.trace->k4_len = next.k4_len;
                if (z_len) {
                        memcpy(next.trace->share_srv, chal.share, sizeof chal.share);
                        memcpy(next.trace->z, next.z, z_len);
                }
        }
        next.state = HS_DEVICE_RESPONSE_SENT;
        device_publish(hs, &next);
out:
        hs_device_wipe(&next);
        OPENSSL_cleanse(&resp, sizeof resp);
        OPENSSL_cleanse(x1, sizeof x1);
        OPENSSL_cleanse(x2, sizeof x2);
        OPENSSL_cleanse(k3, sizeof k3);
        OPENSSL_cleanse(pt, sizeof pt);
        return r;
}

int hs_device_confirm(struct hs_device *hs, const uint8_t *m4, size_t len, uint8_t *next_vault,
                      uint8_t *out, size_t cap, size_t *ret_len) {
        struct hs_device next;
        struct msg_confirm conf = { 0 };
        struct keysched_final fin = { 0 };
        const uint8_t *body;
        uint8_t th3[SV_HASH_LEN], th4[SV_HASH_LEN], pt[SV_CONFIRM_PT_LEN], m5body[SV_COMMIT_BODY_LEN];
        bool vault_written = false;
        int r;

        if (hs->state != HS_DEVICE_RESPONSE_SENT)
                return -EINVAL;
        r = device_check_error(hs, m4, len);
        if (r < 0)
                return r;
        r = wire_decode_sealed(m4, len, SV_MSG_CONFIRM, SV_CONFIRM_BODY_LEN, &body);
        if (r < 0)
                return r;

        next = *hs;
        r = hs_transcript_hash(&next.ts, 3, th3);
        if (r < 0)
                goto out;
        /* A server that does not hold the vault cannot produce M4: stop here, vault unchanged. */
        if (keysched_open(next.k4, next.k4_len, th3, body, SV_CONFIRM_BODY_LEN, pt) < 0 ||
            wire_decode_confirm_pt(pt, sizeof pt, &conf) < 0 ||
            CRYPTO_memcmp(conf.r2, next.r2, sizeof conf.r2) != 0) {
                r = -EACCES;
                goto out;
        }

        memcpy(next.ts.m4, m4, len);
        next.ts.m4_len = len;
        r = hs_transcript_hash(&next.ts, 4, th4);
        if (r >= 0)
                r = keysched_finish(next.params.profile, th4, next.t1, conf.t2, next.z,
                                    next.params.kex == SV_KEX_X25519 ? SV_X25519_LEN : 0, &fin);
        OPENSSL_cleanse(next.z, sizeof next.z);         /* §10: Z is wiped once S is derived */
        if (r >= 0)
                r = keysched_seal(fin.k5, sizeof fin.k5, th4, NULL, 0, m5body);
        if (r >= 0)
                r = hs_next_vault(&next.params, next.keys, &next.ts, fin.u, next_vault);
        vault_written = r >= 0;
        if (r >= 0)
                r = wire_encode_sealed(SV_MSG_COMMIT, m5body, sizeof m5body, out, cap, ret_len);
        if (r < 0)
                goto out;

        r = record_secret(fin.s, RECORD_C2S, next.c2s);
        if (r >= 0)
                r = record_secret(fin.s, RECORD_S2C, next.s2c);
        if (r < 0)
                goto out;
        memcpy(next.session_key, fin.session_key, sizeof next.session_key);
        if (next.trace) {
                memcpy(next.trace->th4, th4, sizeof th4);
                memcpy(next.trace->k5, fin.k5, sizeof fin.k5);
        }
        next.state = HS_DEVICE_DONE;
        device_publish(hs, &next);
out:
        if (r < 0 && vault_written)
                OPENSSL_cleanse(next_vault, vault_size(&hs->params));
        hs_device_wipe(&next);
        keysched_final_wipe(&fin);
        OPENSSL_cleanse(&conf, sizeof conf);
        OPENSSL_cleanse(pt, sizeof pt);
        return r;
}

const uint8_t *hs_device_session_key(const struct hs_device *hs) {
        return hs->state == HS_DEVICE_DONE ? hs->session_key : NULL;
}

int hs_device_channel_secrets(const struct hs_device *hs, uint8_t ret_c2s[RECORD_SECRET_LEN],
                              uint8_t ret_s2c[RECORD_SECRET_LEN]) {
        if (hs->state != HS_DEVICE_DONE)
                return -EBUSY;
        memcpy(ret_c2s, hs->c2s, RECORD_SECRET_LEN);
        memcpy(ret_s2c, hs->s2c, RECORD_SECRET_LEN);
        return 0;
}
