/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "wire.h"

int wire_header_decode(const uint8_t *frame, size_t len, struct wire_header *ret) {
        struct wire_header h;

        if (len < SV_HEADER_LEN)
                return -EBADMSG;
        h = (struct wire_header) {
                .version = frame[0],
                .type = frame[1],
                .length = be16_get(frame + 2),
        };
        if (h.version != SV_PROTO_VERSION)
                return -EPROTONOSUPPORT;
        if (h.length > SV_BODY_MAX)
                return -EMSGSIZE;
        *ret = h;
        return 0;
}

int wire_frame_type(const uint8_t *frame, size_t len) {
        struct wire_header h;
        int r;

        r = wire_header_decode(frame, len, &h);
        if (r < 0)
                return r;
        return h.type;
}

int wire_frame_check(const uint8_t *frame, size_t len, uint8_t type, size_t body_len) {
        struct wire_header h;
        int r;

        r = wire_header_decode(frame, len, &h);
        if (r < 0)
                return r;
        if (h.type != type)
                return -EPROTO;
        if (body_len != 0 && h.length != body_len)
                return -EBADMSG;
        if (len != SV_HEADER_LEN + (size_t) h.length)
                return -EBADMSG;
        return 0;
}

/* Encoders write the header with a zero length, then the body, and frame_end() fills the
 * length in from what was written: the lengths themselves are the table's (profile.c). */
static int frame_begin(struct buf *b, uint8_t *out, size_t cap, uint8_t type) {
        buf_init(b, out, cap);
        if (buf_put_u8(b, SV_PROTO_VERSION) < 0 || buf_put_u8(b, type) < 0 || buf_put_u16(b, 0) < 0)
                return -ENOBUFS;
        return 0;
}

static int frame_end(struct buf *b, size_t *ret_len) {
        size_t body_len = b->len - SV_HEADER_LEN;

        if (body_len > SV_BODY_MAX)
                return -EMSGSIZE;
        be16_put(b->data + 2, (uint16_t) body_len);
        *ret_len = b->len;
        return 0;
}

/* A body reader over a frame already checked by wire_frame_check(). */
static void frame_body(struct buf *b, const uint8_t *frame, size_t len) {
        buf_reader(b, frame + SV_HEADER_LEN, len - SV_HEADER_LEN);
}

int wire_put_challenge(struct buf *b, const struct challenge *c) {
        int r;

        r = buf_put_u8(b, c->p);
        for (unsigned i = 0; r >= 0 && i < c->p; i++)
                r = buf_put_u16(b, c->idx[i]);
        return r;
}

int wire_get_challenge(struct buf *b, uint16_t n, uint8_t p, struct challenge *ret) {
        struct challenge c = { 0 };

        if (buf_get_u8(b, &c.p) < 0 || c.p != p || c.p > SV_P_MAX)
                return -EBADMSG;
        for (unsigned i = 0; i < c.p; i++)
                if (buf_get_u16(b, &c.idx[i]) < 0)
                        return -EBADMSG;
        if (challenge_validate(&c, n, p) < 0)
                return -EBADMSG;
        *ret = c;
        return 0;
}

int wire_encode_hello(const struct msg_hello *m, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (wire_body_len(SV_MSG_HELLO, &(struct wire_params) { .profile = m->profile, .kex = m->kex,
                                                                .id_len = m->id_len }) == 0 ||
            !vault_device_id_valid(m->device_id, m->id_len))
                return -EINVAL;
        r = frame_begin(&b, out, cap, SV_MSG_HELLO);
        if (r >= 0)
                r = buf_put_u8(&b, m->profile);
        if (r >= 0)
                r = buf_put_u8(&b, m->id_len);
        if (r >= 0)
                r = buf_put_bytes(&b, m->device_id, m->id_len);
        if (r >= 0)
                r = buf_put_bytes(&b, m->session_id, sizeof m->session_id);
        if (r >= 0)
                r = buf_put_u64(&b, m->epoch);
        if (r >= 0 && m->kex == SV_KEX_X25519)
                r = buf_put_bytes(&b, m->share, sizeof m->share);
        if (r < 0)
                return r;
        return frame_end(&b, ret_len);
}

int wire_decode_hello(const uint8_t *frame, size_t len, struct msg_hello *ret) {
        static const uint8_t kexes[] = { SV_KEX_NONE, SV_KEX_X25519 };
        struct msg_hello m = { 0 };
        struct buf b;
        bool known = false;
        int r;

        r = wire_frame_check(frame, len, SV_MSG_HELLO, 0);
        if (r < 0)
                return r;
        frame_body(&b, frame, len);
        if (buf_get_u8(&b, &m.profile) < 0 || buf_get_u8(&b, &m.id_len) < 0)
                return -EBADMSG;
        /* Profile and id_len name an entry of the table, and the body's exact length says
         * which kex: the share is there or not, nothing else tells (§10). */
        for (size_t i = 0; i < sizeof kexes && !known; i++) {
                size_t want = wire_body_len(SV_MSG_HELLO, &(struct wire_params) { .profile = m.profile,
                                                                                  .kex = kexes[i],
                                                                                  .id_len = m.id_len });

                if (want != 0 && want == len - SV_HEADER_LEN) {
                        m.kex = kexes[i];
                        known = true;
                }
        }
        if (!known)
                return -EBADMSG;
        if (buf_get_bytes(&b, m.device_id, m.id_len) < 0 ||
            !vault_device_id_valid(m.device_id, m.id_len))
                return -EBADMSG;
        if (buf_get_bytes(&b, m.session_id, sizeof m.session_id) < 0 ||
            buf_get_u64(&b, &m.epoch) < 0 ||
            (m.kex == SV_KEX_X25519 && buf_get_bytes(&b, m.share, sizeof m.share) < 0) ||
            buf_expect_end(&b) < 0)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int wire_encode_challenge(const struct msg_challenge *m, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (m->c1.p < SV_P_MIN || m->c1.p > SV_P_MAX || (m->kex != SV_KEX_NONE && m->kex != SV_KEX_X25519))
                return -EINVAL;
        r = frame_begin(&b, out, cap, SV_MSG_CHALLENGE);
        if (r >= 0)
                r = buf_put_bytes(&b, m->r1, sizeof m->r1);
        if (r >= 0)
                r = wire_put_challenge(&b, &m->c1);
        if (r >= 0 && m->kex == SV_KEX_X25519)
                r = buf_put_bytes(&b, m->share, sizeof m->share);
        if (r < 0)
                return r;
        return frame_end(&b, ret_len);
}

int wire_decode_challenge(const uint8_t *frame, size_t len, const struct vault_params *v, struct msg_challenge *ret) {
        size_t body_len = vault_body_len(SV_MSG_CHALLENGE, v);
        struct msg_challenge m = { .kex = v->kex };
        struct buf b;
        int r;

        /* Parameters outside the table fit no challenge: the header is still checked first. */
        r = wire_frame_check(frame, len, SV_MSG_CHALLENGE, body_len);
        if (r < 0)
                return r;
        if (body_len == 0)
                return -EBADMSG;
        frame_body(&b, frame, len);
        if (buf_get_bytes(&b, m.r1, sizeof m.r1) < 0 ||
            wire_get_challenge(&b, v->n, v->p, &m.c1) < 0 ||
            (m.kex == SV_KEX_X25519 && buf_get_bytes(&b, m.share, sizeof m.share) < 0) ||
            buf_expect_end(&b) < 0)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int wire_encode_sealed(uint8_t type, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (body_len > SV_BODY_MAX)
                return -EMSGSIZE;
        r = frame_begin(&b, out, cap, type);
        if (r >= 0)
                r = buf_put_bytes(&b, body, body_len);
        if (r < 0)
                return r;
        return frame_end(&b, ret_len);
}

int wire_decode_sealed(const uint8_t *frame, size_t len, uint8_t type, size_t body_len, const uint8_t **ret_body) {
        int r;

        if (body_len == 0)
                return -EINVAL;
        r = wire_frame_check(frame, len, type, body_len);
        if (r < 0)
                return r;
        *ret_body = frame + SV_HEADER_LEN;
        return 0;
}

int wire_encode_response_pt(const struct msg_response *m, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        buf_init(&b, out, cap);
        r = buf_put_bytes(&b, m->r1, sizeof m->r1);
        if (r >= 0)
                r = buf_put_bytes(&b, m->t1, sizeof m->t1);
        if (r >= 0)
                r = buf_put_bytes(&b, m->r2, sizeof m->r2);
        if (r >= 0)
                r = wire_put_challenge(&b, &m->c2);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int wire_decode_response_pt(const uint8_t *pt, size_t len, uint16_t n, uint8_t p, struct msg_response *ret) {
        struct msg_response m;
        struct buf b;
        int r = -EBADMSG;

        buf_reader(&b, pt, len);
        if (buf_get_bytes(&b, m.r1, sizeof m.r1) >= 0 &&
            buf_get_bytes(&b, m.t1, sizeof m.t1) >= 0 &&
            buf_get_bytes(&b, m.r2, sizeof m.r2) >= 0 &&
            wire_get_challenge(&b, n, p, &m.c2) >= 0 &&
            buf_expect_end(&b) >= 0) {
                *ret = m;
                r = 0;
        }
        OPENSSL_cleanse(&m, sizeof m);
        return r;
}

int wire_encode_confirm_pt(const struct msg_confirm *m, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        buf_init(&b, out, cap);
        r = buf_put_bytes(&b, m->r2, sizeof m->r2);
        if (r >= 0)
                r = buf_put_bytes(&b, m->t2, sizeof m->t2);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int wire_decode_confirm_pt(const uint8_t *pt, size_t len, struct msg_confirm *ret) {
        struct msg_confirm m;
        struct buf b;
        int r = -EBADMSG;

        buf_reader(&b, pt, len);
        if (buf_get_bytes(&b, m.r2, sizeof m.r2) >= 0 &&
            buf_get_bytes(&b, m.t2, sizeof m.t2) >= 0 &&
            buf_expect_end(&b) >= 0) {
                *ret = m;
                r = 0;
        }
        OPENSSL_cleanse(&m, sizeof m);
        return r;
}

int wire_encode_error(uint8_t code, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (code < SV_ERR_PROTOCOL || code > SV_ERR_VERSION)
                return -EINVAL;
        r = frame_begin(&b, out, cap, SV_MSG_ERROR);
        if (r >= 0)
                r = buf_put_u8(&b, code);
        if (r < 0)
                return r;
        return frame_end(&b, ret_len);
}

int wire_decode_error(const uint8_t *frame, size_t len, uint8_t *ret_code) {
        uint8_t code;
        int r;

        r = wire_frame_check(frame, len, SV_MSG_ERROR, SV_ERROR_BODY_LEN);
        if (r < 0)
                return r;
        code = frame[SV_HEADER_LEN];
        if (code < SV_ERR_PROTOCOL || code > SV_ERR_VERSION)
                return -EBADMSG;
        *ret_code = code;
        return 0;
}

uint8_t wire_error_code(int err) {
        switch (err) {
        case -EPROTONOSUPPORT: return SV_ERR_VERSION;
        case -EACCES: return SV_ERR_AUTH;
        case -EBUSY: return SV_ERR_BUSY;
        default: return SV_ERR_PROTOCOL;
        }
}

const char *wire_error_name(uint8_t code) {
        switch (code) {
        case SV_ERR_PROTOCOL: return "protocol error";
        case SV_ERR_AUTH: return "authentication failed";
        case SV_ERR_BUSY: return "server busy";
        case SV_ERR_VERSION: return "unsupported version";
        default: return "unknown error";
        }
}
