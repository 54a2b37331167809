/* SPDX-License-Identifier: MIT */

/*
 * common/ipc: the devicectl–vaultd packet codec (docs/ipc.md), the decoder that faces every
 * local peer allowed to connect to vaultd's socket. Round trips with exact byte layouts for
 * every request and reply type, then refusals: every truncation, an oversized packet or
 * field, a bad version, a bad op, status or flag, a trailing byte; and the bounds
 * (IPC_PACKET_MAX holds the largest reply). A refused input leaves the output untouched.
 * Inputs are decoded from exact-size heap copies (unit_dup), so ASan sees any over-read.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define POISON 0xa5
#define IPC_BODY_MAX (IPC_PACKET_MAX - IPC_HEADER_LEN)

static bool untouched(const void *p, size_t len) {
        const uint8_t *b = p;

        for (size_t i = 0; i < len; i++)
                if (b[i] != POISON)
                        return false;
        return true;
}

static int decode_request(const uint8_t *pkt, size_t len, struct ipc_request *ret) {
        uint8_t *copy = unit_dup(pkt, len);
        int r = ipc_decode_request(copy, len, ret);

        /* The body points into the packet: compare offsets, not the freed copy. */
        if (r == 0)
                ret->body = pkt + (ret->body - copy);
        free(copy);
        return r;
}

static int decode_reply(const uint8_t *pkt, size_t len, struct ipc_reply *ret) {
        uint8_t *copy = unit_dup(pkt, len);
        int r = ipc_decode_reply(copy, len, ret);

        if (r == 0)
                ret->body = pkt + (ret->body - copy);
        free(copy);
        return r;
}

static int decode_status(const uint8_t *body, size_t len, struct ipc_status_info *ret) {
        uint8_t *copy = unit_dup(body, len);
        int r = ipc_decode_status(copy, len, ret);

        free(copy);
        return r;
}

static int decode_confirm(const uint8_t *body, size_t len, struct ipc_confirm_result *ret) {
        uint8_t *copy = unit_dup(body, len);
        int r = ipc_decode_confirm(copy, len, ret);

        free(copy);
        return r;
}

static const size_t body_lens[] = { 0, 1, 2, SV_FRAME_MAX, IPC_BODY_MAX - 1, IPC_BODY_MAX };

static void fill(uint8_t *p, size_t len, uint8_t seed) {
        for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t) (seed + 7 * i);
}

/* ---- requests ------------------------------------------------------------------------- */

START_TEST(test_request_round_trip) {
        static uint8_t body[IPC_BODY_MAX], pkt[IPC_PACKET_MAX + 8];

        for (unsigned op = IPC_OP_STATUS; op <= IPC_OP_ABORT; op++)
                for (unsigned f = 0; f < 2; f++)
                        for (size_t k = 0; k < ARRAY_SIZE(body_lens); k++) {
                                struct ipc_request req = { .op = (uint8_t) op, .flags = f ? IPC_FLAG_FORCE : 0,
                                                           .body = body, .body_len = body_lens[k] }, d;
                                size_t len = 0;

                                fill(body, sizeof body, (uint8_t) (op + k));
                                ck_assert_int_eq(ipc_encode_request(&req, pkt, sizeof pkt, &len), 0);
                                ck_assert_uint_eq(len, IPC_HEADER_LEN + body_lens[k]);
                                /* u8 version || u8 op || u16 flags (big-endian) || body */
                                ck_assert_uint_eq(pkt[0], IPC_VERSION);
                                ck_assert_uint_eq(pkt[1], op);
                                ck_assert_uint_eq(pkt[2], 0);
                                ck_assert_uint_eq(pkt[3], f ? IPC_FLAG_FORCE : 0);
                                ck_assert(memcmp(pkt + IPC_HEADER_LEN, body, body_lens[k]) == 0);

                                memset(&d, POISON, sizeof d);
                                ck_assert_int_eq(decode_request(pkt, len, &d), 0);
                                ck_assert_uint_eq(d.op, op);
                                ck_assert_uint_eq(d.flags, req.flags);
                                ck_assert_uint_eq(d.body_len, body_lens[k]);
                                ck_assert(d.body == pkt + IPC_HEADER_LEN);

                                /* Every capacity short of the packet: refused, output untouched. */
                                for (size_t cap = 0; cap < len; cap += cap < 16 ? 1 : 61) {
                                        size_t got = 12345;

                                        ck_assert_msg(ipc_encode_request(&req, pkt, cap, &got) == -ENOBUFS,
                                                      "op %u cap %zu", op, cap);
                                        ck_assert_uint_eq(got, 12345);
                                }
                        }
}
END_TEST

START_TEST(test_request_encode_invalid) {
        static const uint8_t bad_ops[] = { 0, IPC_OP_ABORT + 1, 0x80, 0xff };
        uint8_t pkt[IPC_PACKET_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(bad_ops); i++) {
                struct ipc_request req = { .op = bad_ops[i] };
                size_t got = 12345;

                ck_assert_int_eq(ipc_encode_request(&req, pkt, sizeof pkt, &got), -EINVAL);
                ck_assert_uint_eq(got, 12345);
        }
}
END_TEST

START_TEST(test_request_refused) {
        static uint8_t pkt[IPC_PACKET_MAX + 2];
        struct ipc_request d;
        const uint8_t good[IPC_HEADER_LEN] = { IPC_VERSION, IPC_OP_STATUS, 0, 0 };

        /* Every truncation of the header. */
        for (size_t len = 0; len < IPC_HEADER_LEN; len++) {
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_request(good, len, &d) == -EBADMSG, "len %zu", len);
                ck_assert(untouched(&d, sizeof d));
        }
        /* Another version: its own code, so that the caller may say so. Version 1 (before the
         * channel secrets) included: its confirm record would be read wrongly. */
        ck_assert_uint_eq(IPC_VERSION, 2);
        for (unsigned v = 0; v < 256; v++) {
                uint8_t p[IPC_HEADER_LEN] = { (uint8_t) v, IPC_OP_STATUS, 0, 0 };

                if (v == IPC_VERSION)
                        continue;
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_request(p, sizeof p, &d) == -EPROTONOSUPPORT, "version %u", v);
                ck_assert(untouched(&d, sizeof d));
        }
        /* Every op outside 1..6. */
        for (unsigned op = 0; op < 256; op++) {
                uint8_t p[IPC_HEADER_LEN] = { IPC_VERSION, (uint8_t) op, 0, 0 };
                bool valid = op >= IPC_OP_STATUS && op <= IPC_OP_ABORT;

                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_request(p, sizeof p, &d) == (valid ? 0 : -EBADMSG), "op %u", op);
                if (!valid)
                        ck_assert(untouched(&d, sizeof d));
        }
        /* Every flag bit but FORCE and ACCEPT_UNCHECKED. */
        for (unsigned bit = 0; bit < 16; bit++) {
                uint16_t flags = (uint16_t) (1u << bit);
                uint8_t p[IPC_HEADER_LEN] = { IPC_VERSION, IPC_OP_PROVISION, (uint8_t) (flags >> 8), (uint8_t) flags };

                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_request(p, sizeof p, &d) ==
                              (flags == IPC_FLAG_FORCE || flags == IPC_FLAG_ACCEPT_UNCHECKED ? 0 : -EBADMSG),
                              "flag 0x%04x", flags);
        }
        /* The largest packet is accepted, one byte more is not (docs/ipc.md: never valid). */
        memset(pkt, 0, sizeof pkt);
        memcpy(pkt, good, sizeof good);
        ck_assert_int_eq(decode_request(pkt, IPC_PACKET_MAX, &d), 0);
        ck_assert_uint_eq(d.body_len, IPC_BODY_MAX);
        for (size_t extra = 1; extra <= 2; extra++) {
                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_request(pkt, IPC_PACKET_MAX + extra, &d), -EBADMSG);
                ck_assert(untouched(&d, sizeof d));
        }
}
END_TEST

/* ---- replies -------------------------------------------------------------------------- */

START_TEST(test_reply_round_trip) {
        static uint8_t body[IPC_BODY_MAX], pkt[IPC_PACKET_MAX + 8];
        static const uint8_t details[] = { 0, SV_ERR_PROTOCOL, SV_ERR_VERSION, 0xff };

        for (unsigned op = IPC_OP_STATUS; op <= IPC_OP_ABORT; op++)
                for (unsigned st = 0; st < _IPC_STATUS_MAX; st++)
                        for (size_t k = 0; k < ARRAY_SIZE(body_lens); k++) {
                                struct ipc_reply rep = { .op = (uint8_t) op, .status = (uint8_t) st,
                                                         .detail = details[(op + st) % ARRAY_SIZE(details)],
                                                         .body = body, .body_len = body_lens[k] }, d;
                                size_t len = 0, got = 12345;

                                fill(body, sizeof body, (uint8_t) (op * 16 + st));
                                ck_assert_int_eq(ipc_encode_reply(&rep, pkt, sizeof pkt, &len), 0);
                                ck_assert_uint_eq(len, IPC_HEADER_LEN + body_lens[k]);
                                /* u8 version || u8 op || u8 status || u8 detail || body */
                                ck_assert_uint_eq(pkt[0], IPC_VERSION);
                                ck_assert_uint_eq(pkt[1], op);
                                ck_assert_uint_eq(pkt[2], st);
                                ck_assert_uint_eq(pkt[3], rep.detail);
                                ck_assert(memcmp(pkt + IPC_HEADER_LEN, body, body_lens[k]) == 0);

                                memset(&d, POISON, sizeof d);
                                ck_assert_int_eq(decode_reply(pkt, len, &d), 0);
                                ck_assert_uint_eq(d.op, op);
                                ck_assert_uint_eq(d.status, st);
                                ck_assert_uint_eq(d.detail, rep.detail);
                                ck_assert_uint_eq(d.body_len, body_lens[k]);
                                ck_assert(d.body == pkt + IPC_HEADER_LEN);

                                ck_assert_int_eq(ipc_encode_reply(&rep, pkt, len - 1, &got), -ENOBUFS);
                                ck_assert_uint_eq(got, 12345);
                        }
}
END_TEST

START_TEST(test_reply_encode_invalid) {
        uint8_t pkt[IPC_PACKET_MAX];
        const struct ipc_reply bad[] = {
                { .op = 0 },
                { .op = IPC_OP_ABORT + 1 },
                { .op = IPC_OP_STATUS, .status = _IPC_STATUS_MAX },
                { .op = IPC_OP_STATUS, .status = 0xff },
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                size_t got = 12345;

                ck_assert_msg(ipc_encode_reply(&bad[i], pkt, sizeof pkt, &got) == -EINVAL, "case %zu", i);
                ck_assert_uint_eq(got, 12345);
        }
}
END_TEST

START_TEST(test_reply_refused) {
        static uint8_t pkt[IPC_PACKET_MAX + 2];
        const uint8_t good[IPC_HEADER_LEN] = { IPC_VERSION, IPC_OP_HELLO, IPC_OK, 0 };
        struct ipc_reply d;

        for (size_t len = 0; len < IPC_HEADER_LEN; len++) {
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_reply(good, len, &d) == -EBADMSG, "len %zu", len);
                ck_assert(untouched(&d, sizeof d));
        }
        for (unsigned v = 0; v < 256; v++) {
                uint8_t p[IPC_HEADER_LEN] = { (uint8_t) v, IPC_OP_HELLO, IPC_OK, 0 };

                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_reply(p, sizeof p, &d) == (v == IPC_VERSION ? 0 : -EPROTONOSUPPORT),
                              "version %u", v);
        }
        for (unsigned op = 0; op < 256; op++) {
                uint8_t p[IPC_HEADER_LEN] = { IPC_VERSION, (uint8_t) op, IPC_OK, 0 };
                bool valid = op >= IPC_OP_STATUS && op <= IPC_OP_ABORT;

                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_reply(p, sizeof p, &d) == (valid ? 0 : -EBADMSG), "op %u", op);
                if (!valid)
                        ck_assert(untouched(&d, sizeof d));
        }
        /* A status devicectl has no name for is refused, never shown as "unknown". */
        for (unsigned st = 0; st < 256; st++) {
                uint8_t p[IPC_HEADER_LEN] = { IPC_VERSION, IPC_OP_HELLO, (uint8_t) st, 0 };
                bool valid = st < _IPC_STATUS_MAX;

                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_reply(p, sizeof p, &d) == (valid ? 0 : -EBADMSG), "status %u", st);
                if (!valid)
                        ck_assert(untouched(&d, sizeof d));
        }
        memset(pkt, 0, sizeof pkt);
        memcpy(pkt, good, sizeof good);
        ck_assert_int_eq(decode_reply(pkt, IPC_PACKET_MAX, &d), 0);
        for (size_t extra = 1; extra <= 2; extra++) {
                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_reply(pkt, IPC_PACKET_MAX + extra, &d), -EBADMSG);
                ck_assert(untouched(&d, sizeof d));
        }
}
END_TEST

START_TEST(test_status_names) {
        for (unsigned a = 0; a < _IPC_STATUS_MAX; a++) {
                const char *s = ipc_status_to_string((uint8_t) a);

                ck_assert_ptr_nonnull(s);
                ck_assert_msg(s[0] && strcmp(s, "unknown status") != 0, "status %u has no name", a);
                ck_assert_uint_le(strlen(s), IPC_MESSAGE_MAX);
                for (unsigned b = 0; b < a; b++)
                        ck_assert_str_ne(s, ipc_status_to_string((uint8_t) b));
        }
        for (unsigned a = _IPC_STATUS_MAX; a < 256; a++)
                ck_assert_str_eq(ipc_status_to_string((uint8_t) a), "unknown status");
}
END_TEST

/* ---- STATUS body ---------------------------------------------------------------------- */

static struct ipc_status_info status_case(size_t i) {
        char id64[SV_ID_MAX + 1], server[BUNDLE_SERVER_MAX + 1];
        struct ipc_status_info s = { 0 };

        memset(id64, 'd', SV_ID_MAX);
        id64[SV_ID_MAX] = '\0';
        memset(server, 's', BUNDLE_SERVER_MAX);
        memcpy(server + BUNDLE_SERVER_MAX - 5, ":7410", 5);
        server[BUNDLE_SERVER_MAX] = '\0';
        switch (i) {
        case 0:         /* not provisioned: empty and zero fields */
                break;
        case 1:
                s.provisioned = true;
                s.params = unit_params("a", SV_PROFILE_HARDENED, SV_N_MIN, 16, SV_P_MIN, 0);
                break;
        case 2:
                s.provisioned = true;
                s.busy = true;
                s.params = unit_params(id64, SV_PROFILE_HARDENED, SV_N_MAX, 32, SV_P_MAX, UINT64_MAX);
                s.params.kex = SV_KEX_X25519;   /* revision 1.1 §10 */
                strcpy(s.server, server);
                s.nv_index = 0x01ffffff;
                s.counter = UINT64_MAX;
                s.tpm_commands = UINT64_MAX;
                break;
        default:
                s.provisioned = true;
                s.params = unit_params("sensor-0042", SV_PROFILE_PAPER, 64, 16, 8, 0x0102030405060708ull);
                strcpy(s.server, "[::1]:7410");
                s.nv_index = 0x01500000;
                s.counter = 42;
                s.tpm_commands = 7;
                break;
        }
        return s;
}

#define STATUS_CASES 4

static size_t status_layout(const struct ipc_status_info *s, uint8_t *w) {
        size_t o = 0, idl = strlen(s->params.device_id), sl = strlen(s->server);

        w[o++] = (uint8_t) ((s->provisioned ? 1 : 0) | (s->busy ? 2 : 0));
        w[o++] = (uint8_t) idl;
        memcpy(w + o, s->params.device_id, idl);
        o += idl;
        w[o++] = s->params.profile;
        be16_put(w + o, s->params.n);
        o += 2;
        w[o++] = s->params.m;
        w[o++] = s->params.p;
        be64_put(w + o, s->params.epoch);
        o += 8;
        w[o++] = (uint8_t) sl;
        memcpy(w + o, s->server, sl);
        o += sl;
        for (int k = 3; k >= 0; k--)
                w[o++] = (uint8_t) (s->nv_index >> (8 * k));
        be64_put(w + o, s->counter);
        o += 8;
        be64_put(w + o, s->tpm_commands);
        o += 8;
        w[o++] = s->params.kex;
        return o;
}

START_TEST(test_status_round_trip) {
        uint8_t out[IPC_BODY_MAX], want[IPC_BODY_MAX];

        for (size_t i = 0; i < STATUS_CASES; i++) {
                struct ipc_status_info s = status_case(i), d;
                size_t len = 0, wlen = status_layout(&s, want), got = 12345;

                ck_assert_int_eq(ipc_encode_status(&s, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, wlen);
                ck_assert_msg(memcmp(out, want, len) == 0, "case %zu: %s", i, unit_hex(out, len));

                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_status(out, len, &d), 0);
                ck_assert(d.provisioned == s.provisioned && d.busy == s.busy);
                ck_assert_str_eq(d.params.device_id, s.params.device_id);
                ck_assert_uint_eq(d.params.id_len, strlen(s.params.device_id));
                ck_assert_uint_eq(d.params.profile, s.params.profile);
                ck_assert_uint_eq(d.params.n, s.params.n);
                ck_assert_uint_eq(d.params.m, s.params.m);
                ck_assert_uint_eq(d.params.p, s.params.p);
                ck_assert(d.params.epoch == s.params.epoch);
                ck_assert_uint_eq(d.params.kex, s.params.kex);
                ck_assert_str_eq(d.server, s.server);
                ck_assert_uint_eq(d.nv_index, s.nv_index);
                ck_assert(d.counter == s.counter && d.tpm_commands == s.tpm_commands);

                for (size_t cap = 0; cap < len; cap++)
                        ck_assert_msg(ipc_encode_status(&s, out, cap, &got) == -ENOBUFS, "cap %zu", cap);
                ck_assert_uint_eq(got, 12345);
        }
}
END_TEST

START_TEST(test_status_refused) {
        uint8_t body[IPC_BODY_MAX + 1], bad[IPC_BODY_MAX + 1];
        struct ipc_status_info s = status_case((size_t) _i), d;
        size_t len = 0, idl = strlen(s.params.device_id);

        ck_assert_int_eq(ipc_encode_status(&s, body, sizeof body, &len), 0);

        /* Every truncation and a trailing byte. */
        for (size_t cut = 0; cut < len; cut++) {
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_status(body, cut, &d) == -EBADMSG, "case %d cut %zu", _i, cut);
                ck_assert(untouched(&d, sizeof d));
        }
        for (unsigned extra = 0; extra < 256; extra += 85) {
                memcpy(bad, body, len);
                bad[len] = (uint8_t) extra;
                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_status(bad, len + 1, &d), -EBADMSG);
                ck_assert(untouched(&d, sizeof d));
        }
        /* Unknown flag bits. */
        for (unsigned bit = 2; bit < 8; bit++) {
                memcpy(bad, body, len);
                bad[0] |= (uint8_t) (1u << bit);
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_status(bad, len, &d) == -EBADMSG, "flag bit %u", bit);
                ck_assert(untouched(&d, sizeof d));
        }
        /* A device id length past SV_ID_MAX (the bytes are there: only the bound refuses it). */
        for (unsigned l = SV_ID_MAX + 1; l < 256; l += 47) {
                size_t o = 0;

                bad[o++] = body[0];
                bad[o++] = (uint8_t) l;
                memset(bad + o, 'd', l);
                o += l;
                memcpy(bad + o, body + 2 + idl, len - 2 - idl);
                o += len - 2 - idl;
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_status(bad, o, &d) == -EBADMSG, "id length %u", l);
                ck_assert(untouched(&d, sizeof d));
        }
        /* A NUL inside a string. */
        if (idl > 0) {
                memcpy(bad, body, len);
                bad[2] = '\0';
                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_status(bad, len, &d), -EBADMSG);
                ck_assert(untouched(&d, sizeof d));
        }
}
END_TEST

/* A provisioned vaultd must report parameters that could be a vault. */
START_TEST(test_status_params_checked) {
        struct ipc_status_info s = status_case(1), d;
        uint8_t body[IPC_BODY_MAX];
        size_t len = 0;

        /* profile 0, 3; n below the minimum and above the maximum; m 0, 24; p 0, p > n/2. */
        for (int k = 0; k < 8; k++) {
                struct ipc_status_info b = s;

                switch (k) {
                case 0: b.params.profile = 0; break;
                case 1: b.params.profile = SV_PROFILE_PAPER + 1; break;
                case 2: b.params.n = SV_N_MIN - 1; break;
                case 3: b.params.n = SV_N_MAX + 1; break;
                case 4: b.params.m = 0; break;
                case 5: b.params.m = 24; break;
                case 6: b.params.p = 0; break;
                default: b.params.p = (uint8_t) (b.params.n / 2 + 1); break;
                }
                ck_assert_int_eq(ipc_encode_status(&b, body, sizeof body, &len), 0);
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_status(body, len, &d) == -EBADMSG, "case %d", k);
                ck_assert(untouched(&d, sizeof d));
        }
        /* A kex the table does not have, x25519 with paper (hardened only), and any kex while
         * not provisioned (the fields of an unprovisioned vaultd are all zero). */
        for (int k = 0; k < 4; k++) {
                struct ipc_status_info b = k == 3 ? status_case(0) : s;

                switch (k) {
                case 0: b.params.kex = SV_KEX_X25519 + 1; break;
                case 1: b.params.kex = 0xff; break;
                case 2: b.params.profile = SV_PROFILE_PAPER; b.params.kex = SV_KEX_X25519; break;
                default: b.params.kex = SV_KEX_X25519; break;
                }
                ck_assert_int_eq(ipc_encode_status(&b, body, sizeof body, &len), 0);
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_status(body, len, &d) == -EBADMSG, "kex case %d", k);
                ck_assert(untouched(&d, sizeof d));
        }
        /* An invalid device id (a character outside the allowed set). */
        s.params.device_id[0] = ' ';
        ck_assert_int_eq(ipc_encode_status(&s, body, sizeof body, &len), 0);
        memset(&d, POISON, sizeof d);
        ck_assert_int_eq(decode_status(body, len, &d), -EBADMSG);
}
END_TEST

/* ---- CONFIRM body --------------------------------------------------------------------- */

static struct ipc_confirm_result confirm_case(uint64_t epoch) {
        struct ipc_confirm_result c = { .m5_len = SV_COMMIT_FRAME_LEN, .epoch = epoch };

        fill(c.m5, sizeof c.m5, 0x50);
        fill(c.session_key, sizeof c.session_key, 0xc0);
        fill(c.c2s, sizeof c.c2s, 0xc2);
        fill(c.s2c, sizeof c.s2c, 0x52);
        return c;
}

#define CONFIRM_BODY_LEN (2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN + 2 * RECORD_SECRET_LEN + 8)

START_TEST(test_confirm_round_trip) {
        static const uint64_t epochs[] = { 0, 1, 0x0102030405060708ull, UINT64_MAX };
        uint8_t out[IPC_BODY_MAX], want[CONFIRM_BODY_LEN];

        for (size_t i = 0; i < ARRAY_SIZE(epochs); i++) {
                struct ipc_confirm_result c = confirm_case(epochs[i]), d;
                size_t len = 0, got = 12345;

                /* u16 m5_len || M5 || session key || c2s || s2c || u64 epoch */
                be16_put(want, SV_COMMIT_FRAME_LEN);
                memcpy(want + 2, c.m5, SV_COMMIT_FRAME_LEN);
                memcpy(want + 2 + SV_COMMIT_FRAME_LEN, c.session_key, SV_KEY_LEN);
                memcpy(want + 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN, c.c2s, RECORD_SECRET_LEN);
                memcpy(want + 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN + RECORD_SECRET_LEN, c.s2c, RECORD_SECRET_LEN);
                be64_put(want + 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN + 2 * RECORD_SECRET_LEN, epochs[i]);

                ck_assert_int_eq(ipc_encode_confirm(&c, out, sizeof out, &len), 0);
                ck_assert_uint_eq(len, CONFIRM_BODY_LEN);
                ck_assert(memcmp(out, want, len) == 0);
                memset(&d, POISON, sizeof d);
                ck_assert_int_eq(decode_confirm(out, len, &d), 0);
                ck_assert_uint_eq(d.m5_len, SV_COMMIT_FRAME_LEN);
                ck_assert(memcmp(d.m5, c.m5, SV_COMMIT_FRAME_LEN) == 0);
                ck_assert(memcmp(d.session_key, c.session_key, SV_KEY_LEN) == 0);
                ck_assert(memcmp(d.c2s, c.c2s, RECORD_SECRET_LEN) == 0);
                ck_assert(memcmp(d.s2c, c.s2c, RECORD_SECRET_LEN) == 0);
                ck_assert(d.epoch == epochs[i]);

                for (size_t cap = 0; cap < len; cap++)
                        ck_assert_msg(ipc_encode_confirm(&c, out, cap, &got) == -ENOBUFS, "cap %zu", cap);
                ck_assert_uint_eq(got, 12345);
        }
}
END_TEST

START_TEST(test_confirm_refused) {
        static const uint16_t bad_m5[] = { 0, 1, SV_COMMIT_FRAME_LEN - 1, SV_COMMIT_FRAME_LEN + 1,
                                           SV_FRAME_MAX, 0xffff };
        struct ipc_confirm_result c = confirm_case(5), d;
        uint8_t body[IPC_BODY_MAX + 2], bad[IPC_BODY_MAX + 2];
        size_t len = 0, got = 12345;

        ck_assert_int_eq(ipc_encode_confirm(&c, body, sizeof body, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_confirm(body, cut, &d) == -EBADMSG, "cut %zu", cut);
                ck_assert(untouched(&d, sizeof d));
        }
        memcpy(bad, body, len);
        bad[len] = 0;
        memset(&d, POISON, sizeof d);
        ck_assert_int_eq(decode_confirm(bad, len + 1, &d), -EBADMSG);
        ck_assert(untouched(&d, sizeof d));

        /* Any other M5 length, with the bytes to back it where they fit. */
        for (size_t i = 0; i < ARRAY_SIZE(bad_m5); i++) {
                size_t n = bad_m5[i], blen = 2 + n + SV_KEY_LEN + 2 * RECORD_SECRET_LEN + 8;

                memset(bad, 0x33, sizeof bad);
                be16_put(bad, bad_m5[i]);
                if (blen > sizeof bad)
                        blen = sizeof bad;
                memset(&d, POISON, sizeof d);
                ck_assert_msg(decode_confirm(bad, blen, &d) == -EBADMSG, "m5_len %zu", n);
                ck_assert(untouched(&d, sizeof d));
        }
        /* The encoder refuses an M5 of any other length, too. */
        c.m5_len = SV_COMMIT_FRAME_LEN - 1;
        ck_assert_int_eq(ipc_encode_confirm(&c, body, sizeof body, &got), -EINVAL);
        ck_assert_uint_eq(got, 12345);
}
END_TEST

/* ---- bounds --------------------------------------------------------------------------- */

/* The largest body of each kind fits one packet, and every reply devicectl relays does. */
START_TEST(test_bounds) {
        struct ipc_status_info s = status_case(2);
        uint8_t out[IPC_PACKET_MAX];
        size_t len = 0;

        ck_assert_uint_eq(IPC_PACKET_MAX, IPC_HEADER_LEN + SV_FRAME_MAX + 64);
        ck_assert_uint_le(IPC_HEADER_LEN + SV_FRAME_MAX, IPC_PACKET_MAX);
        ck_assert_uint_le(IPC_HEADER_LEN + CONFIRM_BODY_LEN, IPC_PACKET_MAX);
        ck_assert_uint_le(IPC_HEADER_LEN + IPC_MESSAGE_MAX, IPC_PACKET_MAX);
        /* The largest STATUS (longest id and server) encodes into one packet's body. */
        ck_assert_int_eq(ipc_encode_status(&s, out, IPC_BODY_MAX, &len), 0);
        ck_assert_uint_eq(len, 1 + 1 + SV_ID_MAX + 1 + 2 + 1 + 1 + 8 + 1 + BUNDLE_SERVER_MAX + 4 + 8 + 8 + 1);
}
END_TEST

static Suite *ipc_suite(void) {
        Suite *s = suite_create("ipc");
        TCase *tc = tcase_create("codec");

        tcase_add_test(tc, test_request_round_trip);
        tcase_add_test(tc, test_request_encode_invalid);
        tcase_add_test(tc, test_request_refused);
        tcase_add_test(tc, test_reply_round_trip);
        tcase_add_test(tc, test_reply_encode_invalid);
        tcase_add_test(tc, test_reply_refused);
        tcase_add_test(tc, test_status_names);
        tcase_add_test(tc, test_status_round_trip);
        tcase_add_loop_test(tc, test_status_refused, 0, STATUS_CASES);
        tcase_add_test(tc, test_status_params_checked);
        tcase_add_test(tc, test_confirm_round_trip);
        tcase_add_test(tc, test_confirm_refused);
        tcase_add_test(tc, test_bounds);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(ipc_suite());
}
