/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sinkmsg.h"
#include "vault.h"

static void put_u64(uint8_t *p, uint64_t v) {
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (uint8_t) v;
}

static uint64_t get_u64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static bool reason_valid(const uint8_t *s, size_t len) {
        if (len < 1 || len > SINK_REASON_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
                        return false;
        return true;
}

static int header(uint8_t type, uint8_t *out, size_t cap, size_t body) {
        if (cap < SINK_HEADER_LEN + body)
                return -ENOBUFS;
        out[0] = SINK_VERSION;
        out[1] = type;
        return 0;
}

int sink_encode_session(uint8_t kex, uint64_t epoch, const uint8_t session_id[SV_SESSION_ID_LEN],
                        const char *device_id, const uint8_t *key, uint8_t *out, size_t cap) {
        size_t id_len = strlen(device_id), body = SINK_SESSION_FIXED + id_len + (key ? SV_KEY_LEN : 0);
        uint8_t *p = out + SINK_HEADER_LEN;
        int r;

        if (!vault_device_id_valid(device_id, id_len))
                return -EINVAL;
        r = header(SINK_MSG_SESSION, out, cap, body);
        if (r < 0)
                return r;
        *p++ = kex;
        *p++ = key ? SINK_FLAG_KEY : 0;
        put_u64(p, epoch);
        p += 8;
        memcpy(p, session_id, SV_SESSION_ID_LEN);
        p += SV_SESSION_ID_LEN;
        *p++ = (uint8_t) id_len;
        memcpy(p, device_id, id_len);
        p += id_len;
        if (key)
                memcpy(p, key, SV_KEY_LEN);
        return (int) (SINK_HEADER_LEN + body);
}

int sink_encode_data(uint32_t seq, const void *payload, size_t len, uint8_t *out, size_t cap) {
        uint8_t *p = out + SINK_HEADER_LEN;
        int r;

        if (len > RECORD_PAYLOAD_MAX)
                return -EINVAL;
        r = header(SINK_MSG_DATA, out, cap, SINK_DATA_FIXED + len);
        if (r < 0)
                return r;
        p[0] = (uint8_t) (seq >> 24);
        p[1] = (uint8_t) (seq >> 16);
        p[2] = (uint8_t) (seq >> 8);
        p[3] = (uint8_t) seq;
        /* memmove: the payload may already be in place, at out + 6 (an answer built there). */
        if (len > 0)
                memmove(p + SINK_DATA_FIXED, payload, len);
        return (int) (SINK_HEADER_LEN + SINK_DATA_FIXED + len);
}

int sink_encode_close(uint8_t *out, size_t cap) {
        int r = header(SINK_MSG_CLOSE, out, cap, 0);

        return r < 0 ? r : SINK_HEADER_LEN;
}

int sink_encode_cut(const char *reason, uint8_t *out, size_t cap) {
        size_t len = strlen(reason);
        int r;

        if (!reason_valid((const uint8_t *) reason, len))
                return -EINVAL;
        r = header(SINK_MSG_CUT, out, cap, len);
        if (r < 0)
                return r;
        memcpy(out + SINK_HEADER_LEN, reason, len);
        return (int) (SINK_HEADER_LEN + len);
}

static int parse_session(const uint8_t *b, size_t len, struct sink_msg *m) {
        size_t id_len;

        if (len < SINK_SESSION_FIXED)
                return -EBADMSG;
        if (b[1] & ~SINK_FLAG_KEY)
                return -EBADMSG;
        id_len = b[SINK_SESSION_FIXED - 1];
        m->has_key = b[1] & SINK_FLAG_KEY;
        if (len != SINK_SESSION_FIXED + id_len + (m->has_key ? SV_KEY_LEN : 0))
                return -EBADMSG;
        if (!vault_device_id_valid((const char *) b + SINK_SESSION_FIXED, id_len))
                return -EBADMSG;
        m->kex = b[0];
        m->epoch = get_u64(b + 2);
        memcpy(m->session_id, b + 10, SV_SESSION_ID_LEN);
        memcpy(m->device_id, b + SINK_SESSION_FIXED, id_len);
        m->device_id[id_len] = '\0';
        if (m->has_key)
                memcpy(m->key, b + SINK_SESSION_FIXED + id_len, SV_KEY_LEN);
        return 0;
}

int sink_parse(const uint8_t *pkt, size_t len, struct sink_msg *ret) {
        struct sink_msg m = { 0 };
        const uint8_t *b = pkt + SINK_HEADER_LEN;
        size_t blen;
        int r = 0;

        if (len < SINK_HEADER_LEN)
                return -EBADMSG;
        if (pkt[0] != SINK_VERSION)
                return -EPROTONOSUPPORT;
        blen = len - SINK_HEADER_LEN;
        m.type = pkt[1];
        switch (m.type) {
        case SINK_MSG_SESSION:
                r = parse_session(b, blen, &m);
                break;
        case SINK_MSG_DATA:
                if (blen < SINK_DATA_FIXED || blen - SINK_DATA_FIXED > RECORD_PAYLOAD_MAX) {
                        r = -EBADMSG;
                        break;
                }
                m.seq = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
                m.payload = b + SINK_DATA_FIXED;
                m.payload_len = blen - SINK_DATA_FIXED;
                break;
        case SINK_MSG_CLOSE:
                if (blen != 0)
                        r = -EBADMSG;
                break;
        case SINK_MSG_CUT:
                if (!reason_valid(b, blen))
                        r = -EBADMSG;
                else {
                        memcpy(m.reason, b, blen);
                        m.reason[blen] = '\0';
                }
                break;
        default:
                r = -EBADMSG;
        }
        if (r == 0)
                *ret = m;
        OPENSSL_cleanse(&m, sizeof m);
        return r;
}
