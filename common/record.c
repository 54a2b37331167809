/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "crypto.h"
#include "record.h"

int record_secret(const uint8_t s[SV_KEY_LEN], enum record_dir dir, uint8_t ret_secret[RECORD_SECRET_LEN]) {
        switch (dir) {
        case RECORD_C2S: return crypto_hkdf_expand(s, "sv1 c2s", ret_secret, RECORD_SECRET_LEN);
        case RECORD_S2C: return crypto_hkdf_expand(s, "sv1 s2c", ret_secret, RECORD_SECRET_LEN);
        default: return -EINVAL;
        }
}

void record_init(struct record_chain *c, uint8_t secret[RECORD_SECRET_LEN]) {
        *c = (struct record_chain) { .state = RECORD_READY };
        memcpy(c->a, secret, sizeof c->a);
        OPENSSL_cleanse(secret, RECORD_SECRET_LEN);
}

void record_wipe(struct record_chain *c) {
        OPENSSL_cleanse(c, sizeof *c);
}

/* Ends the chain in `state`; the secret goes with it. */
static void chain_end(struct record_chain *c, enum record_state state) {
        OPENSSL_cleanse(c->a, sizeof c->a);
        c->state = state;
}

int record_header_check(const uint8_t *frame, size_t len, size_t *ret_frame_len) {
        uint16_t body;

        if (len < SV_HEADER_LEN)
                return -EBADMSG;
        if (frame[0] != SV_PROTO_VERSION)
                return -EPROTONOSUPPORT;
        if (frame[1] != SV_MSG_DATA && frame[1] != SV_MSG_CLOSE)
                return -EPROTO;
        body = be16_get(frame + 2);
        if (body > SV_BODY_MAX)
                return -EMSGSIZE;
        if (body < RECORD_BODY_MIN || (frame[1] == SV_MSG_CLOSE && body != RECORD_BODY_MIN))
                return -EBADMSG;
        *ret_frame_len = SV_HEADER_LEN + (size_t) body;
        return frame[1];
}

/*
 * KR_i and A_{i+1} of the chain's current record, and the nonce 0x00000000 || u64 i. The
 * caller wipes kr and next; the chain itself moves on only once the record is through.
 * Both are HKDF-Expand of A_i: one call keys HMAC with A_i once for the two.
 */
static int chain_keys(const struct record_chain *c, uint8_t kr[32], uint8_t next[RECORD_SECRET_LEN],
                      uint8_t iv[SV_GCM_IV_LEN]) {
        static const char *const infos[] = { "sv1 record", "sv1 next" };
        uint8_t *const outs[] = { kr, next };
        int r;

        _Static_assert(RECORD_SECRET_LEN == 32, "A_i is one HKDF-Expand block");
        r = crypto_hkdf_expand32_v(c->a, infos, outs, 2);
        memset(iv, 0, 4);
        be64_put(iv + 4, c->seq);
        return r;
}

/* Record i is through: A_{i+1} replaces A_i, or after a CLOSE nothing does. */
static void chain_advance(struct record_chain *c, uint8_t type, const uint8_t next[RECORD_SECRET_LEN]) {
        if (type == SV_MSG_CLOSE) {
                chain_end(c, RECORD_CLOSED);
                c->seq++;
                return;
        }
        memcpy(c->a, next, sizeof c->a);
        c->seq++;
}

int record_seal(struct record_chain *c, uint8_t type, const void *payload, size_t len,
                uint8_t *out, size_t cap, size_t *ret_len) {
        uint8_t kr[32], next[RECORD_SECRET_LEN], iv[SV_GCM_IV_LEN];
        size_t frame_len = RECORD_FRAME_LEN(len);
        int r;

        switch (c->state) {
        case RECORD_READY: break;
        case RECORD_CLOSED: return -ESHUTDOWN;
        case RECORD_FAILED: return -EPIPE;
        default: return -EINVAL;
        }
        if ((type != SV_MSG_DATA && type != SV_MSG_CLOSE) || len > RECORD_PAYLOAD_MAX ||
            (type == SV_MSG_CLOSE && len != 0) || (len > 0 && !payload))
                return -EINVAL;
        if (c->seq == UINT64_MAX)
                return -EOVERFLOW;
        if (cap < frame_len)
                return -ENOBUFS;

        r = chain_keys(c, kr, next, iv);
        if (r >= 0) {
                out[0] = SV_PROTO_VERSION;
                out[1] = type;
                be16_put(out + 2, (uint16_t) (len + SV_TAG_LEN));
                r = crypto_aead_seal(kr, sizeof kr, iv, out, SV_HEADER_LEN, payload, len, out + SV_HEADER_LEN);
        }
        if (r >= 0) {
                chain_advance(c, type, next);
                *ret_len = frame_len;
        } else
                OPENSSL_cleanse(out, frame_len);
        OPENSSL_cleanse(kr, sizeof kr);
        OPENSSL_cleanse(next, sizeof next);
        return r < 0 ? r : 0;
}

/*
 * Every failure ends the direction: a record that does not open is an attack or a broken
 * peer, and a receiver that went on (or told which check failed) would give a forger
 * retries. The tag check is the only one that needs the key; everything else is refused
 * before it, the header first, so that a reader can apply the same bound before the body.
 */
int record_open(struct record_chain *c, const uint8_t *frame, size_t len,
                uint8_t *payload, size_t cap, size_t *ret_len) {
        uint8_t kr[32], next[RECORD_SECRET_LEN], iv[SV_GCM_IV_LEN];
        size_t frame_len = 0, pt_len = 0;
        int type, r;

        switch (c->state) {
        case RECORD_READY: break;
        case RECORD_CLOSED: chain_end(c, RECORD_FAILED); return -ESHUTDOWN;
        case RECORD_FAILED: return -EPIPE;
        default: return -EINVAL;
        }
        type = record_header_check(frame, len, &frame_len);
        if (type < 0) {
                chain_end(c, RECORD_FAILED);
                return type;
        }
        if (len != frame_len) {
                chain_end(c, RECORD_FAILED);
                return -EBADMSG;
        }
        pt_len = frame_len - SV_HEADER_LEN - SV_TAG_LEN;
        if (cap < pt_len || (pt_len > 0 && !payload)) {
                chain_end(c, RECORD_FAILED);
                return -ENOBUFS;
        }
        if (c->seq == UINT64_MAX) {
                chain_end(c, RECORD_FAILED);
                return -EOVERFLOW;
        }

        r = chain_keys(c, kr, next, iv);
        if (r >= 0)
                r = crypto_aead_open(kr, sizeof kr, iv, frame, SV_HEADER_LEN, frame + SV_HEADER_LEN,
                                     frame_len - SV_HEADER_LEN, payload);
        OPENSSL_cleanse(kr, sizeof kr);
        if (r < 0) {
                if (pt_len > 0)
                        OPENSSL_cleanse(payload, pt_len);
                chain_end(c, RECORD_FAILED);
        } else {
                chain_advance(c, (uint8_t) type, next);
                *ret_len = pt_len;
        }
        OPENSSL_cleanse(next, sizeof next);
        return r < 0 ? r : type;
}
