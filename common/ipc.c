/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "ipc.h"

static bool op_valid(uint8_t op) {
        return op >= IPC_OP_STATUS && op <= IPC_OP_ABORT;
}

int ipc_encode_request(const struct ipc_request *req, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (!op_valid(req->op))
                return -EINVAL;
        buf_init(&b, out, cap);
        r = buf_put_u8(&b, IPC_VERSION);
        if (r >= 0)
                r = buf_put_u8(&b, req->op);
        if (r >= 0)
                r = buf_put_u16(&b, req->flags);
        if (r >= 0)
                r = buf_put_bytes(&b, req->body, req->body_len);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int ipc_decode_request(const uint8_t *pkt, size_t len, struct ipc_request *ret) {
        struct ipc_request req = { 0 };
        uint8_t version;
        struct buf b;

        /* docs/ipc.md: a packet larger than IPC_PACKET_MAX is never valid. The callers' receive
         * buffers have that size already; the decoder holds the bound itself all the same. */
        if (len > IPC_PACKET_MAX)
                return -EBADMSG;
        buf_reader(&b, pkt, len);
        if (buf_get_u8(&b, &version) < 0 || buf_get_u8(&b, &req.op) < 0 || buf_get_u16(&b, &req.flags) < 0)
                return -EBADMSG;
        if (version != IPC_VERSION)
                return -EPROTONOSUPPORT;
        if (!op_valid(req.op) || (req.flags & ~IPC_FLAGS_KNOWN))
                return -EBADMSG;
        req.body = buf_peek(&b);
        req.body_len = buf_remaining(&b);
        *ret = req;
        return 0;
}

int ipc_encode_reply(const struct ipc_reply *rep, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (!op_valid(rep->op) || rep->status >= _IPC_STATUS_MAX)
                return -EINVAL;
        buf_init(&b, out, cap);
        r = buf_put_u8(&b, IPC_VERSION);
        if (r >= 0)
                r = buf_put_u8(&b, rep->op);
        if (r >= 0)
                r = buf_put_u8(&b, rep->status);
        if (r >= 0)
                r = buf_put_u8(&b, rep->detail);
        if (r >= 0)
                r = buf_put_bytes(&b, rep->body, rep->body_len);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int ipc_decode_reply(const uint8_t *pkt, size_t len, struct ipc_reply *ret) {
        struct ipc_reply rep = { 0 };
        uint8_t version;
        struct buf b;

        if (len > IPC_PACKET_MAX)
                return -EBADMSG;
        buf_reader(&b, pkt, len);
        if (buf_get_u8(&b, &version) < 0 || buf_get_u8(&b, &rep.op) < 0 ||
            buf_get_u8(&b, &rep.status) < 0 || buf_get_u8(&b, &rep.detail) < 0)
                return -EBADMSG;
        if (version != IPC_VERSION)
                return -EPROTONOSUPPORT;
        if (!op_valid(rep.op) || rep.status >= _IPC_STATUS_MAX)
                return -EBADMSG;
        rep.body = buf_peek(&b);
        rep.body_len = buf_remaining(&b);
        *ret = rep;
        return 0;
}

static int put_string8(struct buf *b, const char *s) {
        size_t len = strlen(s);
        int r;

        if (len > UINT8_MAX)
                return -EINVAL;
        r = buf_put_u8(b, (uint8_t) len);
        if (r >= 0)
                r = buf_put_bytes(b, s, len);
        return r;
}

static int get_string8(struct buf *b, char *out, size_t cap) {
        uint8_t len;

        if (buf_get_u8(b, &len) < 0 || len >= cap || buf_get_bytes(b, out, len) < 0)
                return -EBADMSG;
        out[len] = '\0';
        if (memchr(out, '\0', len))
                return -EBADMSG;
        return 0;
}

/*
 * status body: u8 flags (1 provisioned, 2 busy) || string8 device_id || u8 profile ||
 * u16 n || u8 m || u8 p || u64 epoch || string8 server || u32 nv_index || u64 counter ||
 * u64 tpm_commands || u8 kex. An unprovisioned vaultd sends empty/zero fields.
 */
int ipc_encode_status(const struct ipc_status_info *s, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        buf_init(&b, out, cap);
        r = buf_put_u8(&b, (uint8_t) ((s->provisioned ? 1 : 0) | (s->busy ? 2 : 0)));
        if (r >= 0)
                r = put_string8(&b, s->params.device_id);
        if (r >= 0)
                r = buf_put_u8(&b, s->params.profile);
        if (r >= 0)
                r = buf_put_u16(&b, s->params.n);
        if (r >= 0)
                r = buf_put_u8(&b, s->params.m);
        if (r >= 0)
                r = buf_put_u8(&b, s->params.p);
        if (r >= 0)
                r = buf_put_u64(&b, s->params.epoch);
        if (r >= 0)
                r = put_string8(&b, s->server);
        if (r >= 0)
                r = buf_put_u32(&b, s->nv_index);
        if (r >= 0)
                r = buf_put_u64(&b, s->counter);
        if (r >= 0)
                r = buf_put_u64(&b, s->tpm_commands);
        if (r >= 0)
                r = buf_put_u8(&b, s->params.kex);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int ipc_decode_status(const uint8_t *body, size_t len, struct ipc_status_info *ret) {
        struct ipc_status_info s = { 0 };
        uint8_t flags;
        struct buf b;

        buf_reader(&b, body, len);
        if (buf_get_u8(&b, &flags) < 0 || (flags & ~3u) ||
            get_string8(&b, s.params.device_id, sizeof s.params.device_id) < 0 ||
            buf_get_u8(&b, &s.params.profile) < 0 ||
            buf_get_u16(&b, &s.params.n) < 0 ||
            buf_get_u8(&b, &s.params.m) < 0 ||
            buf_get_u8(&b, &s.params.p) < 0 ||
            buf_get_u64(&b, &s.params.epoch) < 0 ||
            get_string8(&b, s.server, sizeof s.server) < 0 ||
            buf_get_u32(&b, &s.nv_index) < 0 ||
            buf_get_u64(&b, &s.counter) < 0 ||
            buf_get_u64(&b, &s.tpm_commands) < 0 ||
            buf_get_u8(&b, &s.params.kex) < 0 ||
            buf_expect_end(&b) < 0)
                return -EBADMSG;
        s.provisioned = flags & 1;
        s.busy = flags & 2;
        s.params.id_len = (uint8_t) strlen(s.params.device_id);
        /* vault_params_validate() checks kex against the profile table too. */
        if (s.provisioned ? vault_params_validate(&s.params) < 0 : s.params.kex != SV_KEX_NONE)
                return -EBADMSG;
        *ret = s;
        return 0;
}

/* confirm body: u16 m5_len || M5 || session_key[32] || c2s[32] || s2c[32] || u64 epoch */
int ipc_encode_confirm(const struct ipc_confirm_result *c, uint8_t *out, size_t cap, size_t *ret_len) {
        struct buf b;
        int r;

        if (c->m5_len != SV_COMMIT_FRAME_LEN)
                return -EINVAL;
        buf_init(&b, out, cap);
        r = buf_put_u16(&b, (uint16_t) c->m5_len);
        if (r >= 0)
                r = buf_put_bytes(&b, c->m5, c->m5_len);
        if (r >= 0)
                r = buf_put_bytes(&b, c->session_key, sizeof c->session_key);
        if (r >= 0)
                r = buf_put_bytes(&b, c->c2s, sizeof c->c2s);
        if (r >= 0)
                r = buf_put_bytes(&b, c->s2c, sizeof c->s2c);
        if (r >= 0)
                r = buf_put_u64(&b, c->epoch);
        if (r < 0)
                return r;
        *ret_len = b.len;
        return 0;
}

int ipc_decode_confirm(const uint8_t *body, size_t len, struct ipc_confirm_result *ret) {
        struct ipc_confirm_result c = { 0 };
        uint16_t m5_len;
        struct buf b;

        int r = -EBADMSG;

        buf_reader(&b, body, len);
        if (buf_get_u16(&b, &m5_len) < 0 || m5_len != SV_COMMIT_FRAME_LEN ||
            buf_get_bytes(&b, c.m5, m5_len) < 0 ||
            buf_get_bytes(&b, c.session_key, sizeof c.session_key) < 0 ||
            buf_get_bytes(&b, c.c2s, sizeof c.c2s) < 0 ||
            buf_get_bytes(&b, c.s2c, sizeof c.s2c) < 0 ||
            buf_get_u64(&b, &c.epoch) < 0 ||
            buf_expect_end(&b) < 0)
                goto out;
        c.m5_len = m5_len;
        *ret = c;
        r = 0;
out:
        OPENSSL_cleanse(&c, sizeof c);   /* holds the session key and channel secrets */
        return r;
}

const char *ipc_status_to_string(uint8_t status) {
        static const char *const names[_IPC_STATUS_MAX] = {
                [IPC_OK] = "ok",
                [IPC_BAD_REQUEST] = "bad request",
                [IPC_DENIED] = "permission denied",
                [IPC_BUSY] = "vault busy with another handshake",
                [IPC_NOT_PROVISIONED] = "no vault provisioned",
                [IPC_EXISTS] = "a vault is already provisioned",
                [IPC_PROTOCOL] = "malformed message from the server",
                [IPC_AUTH_FAILED] = "the server failed to prove it holds the vault",
                [IPC_SERVER_ERROR] = "the server refused",
                [IPC_STATE] = "operation out of order",
                [IPC_INTERNAL] = "internal error",
                [IPC_TPM] = "TPM failure",
                [IPC_EXHAUSTED] = "the vault's epoch cannot advance: enroll the device again",
                [IPC_BAD_BUNDLE] = "invalid enrollment bundle",
                [IPC_FORBIDDEN] = "not permitted",
                [IPC_RATE_LIMITED] = "too many authentications",
        };

        return status < _IPC_STATUS_MAX ? names[status] : "unknown status";
}
