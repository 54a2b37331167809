/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ipc: the devicectl–vaultd packet codec (docs/ipc.md). vaultd decodes requests from
 * any local peer that may connect to its socket; devicectl decodes replies, STATUS and
 * CONFIRM bodies. Every input goes through all four decoders. Whatever decodes must encode
 * back to exactly the same bytes; whatever does not must leave the output untouched and
 * fail with the documented code.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ipc.h"

#define POISON 0xa5

static bool untouched(const void *p, size_t len) {
        const uint8_t *b = p;

        for (size_t i = 0; i < len; i++)
                if (b[i] != POISON)
                        return false;
        return true;
}

static void fuzz_request(const uint8_t *data, size_t size) {
        struct ipc_request req;
        uint8_t out[IPC_PACKET_MAX + 64];
        size_t len = 0;
        int r;

        memset(&req, POISON, sizeof req);
        r = ipc_decode_request(data, size, &req);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
                FUZZ_CHECK(size < IPC_HEADER_LEN ? r == -EBADMSG : true);
                FUZZ_CHECK(untouched(&req, sizeof req));
                return;
        }
        FUZZ_CHECK(size >= IPC_HEADER_LEN && data[0] == IPC_VERSION);
        FUZZ_CHECK(req.op >= IPC_OP_STATUS && req.op <= IPC_OP_ABORT);
        FUZZ_CHECK((req.flags & ~IPC_FLAGS_KNOWN) == 0);
        FUZZ_CHECK(req.body == data + IPC_HEADER_LEN && req.body_len == size - IPC_HEADER_LEN);
        FUZZ_CHECK(size <= IPC_PACKET_MAX);
        FUZZ_CHECK(ipc_encode_request(&req, out, sizeof out, &len) == 0);
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
        /* One byte short of room: refused, not truncated. */
        FUZZ_CHECK(ipc_encode_request(&req, out, size - 1, &len) == -ENOBUFS);
}

static void fuzz_reply(const uint8_t *data, size_t size) {
        struct ipc_reply rep;
        uint8_t out[IPC_PACKET_MAX + 64];
        size_t len = 0;
        int r;

        memset(&rep, POISON, sizeof rep);
        r = ipc_decode_reply(data, size, &rep);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
                FUZZ_CHECK(size < IPC_HEADER_LEN ? r == -EBADMSG : true);
                FUZZ_CHECK(untouched(&rep, sizeof rep));
                return;
        }
        FUZZ_CHECK(size >= IPC_HEADER_LEN && data[0] == IPC_VERSION);
        FUZZ_CHECK(rep.op >= IPC_OP_STATUS && rep.op <= IPC_OP_ABORT);
        FUZZ_CHECK(rep.status < _IPC_STATUS_MAX);
        FUZZ_CHECK(strcmp(ipc_status_to_string(rep.status), "unknown status") != 0);
        FUZZ_CHECK(rep.body == data + IPC_HEADER_LEN && rep.body_len == size - IPC_HEADER_LEN);
        FUZZ_CHECK(size <= IPC_PACKET_MAX);
        FUZZ_CHECK(ipc_encode_reply(&rep, out, sizeof out, &len) == 0);
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
        FUZZ_CHECK(ipc_encode_reply(&rep, out, size - 1, &len) == -ENOBUFS);
}

static void fuzz_status(const uint8_t *data, size_t size) {
        struct ipc_status_info s, again;
        uint8_t out[IPC_PACKET_MAX];
        size_t len = 0;
        int r;

        memset(&s, POISON, sizeof s);
        r = ipc_decode_status(data, size, &s);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG);
                FUZZ_CHECK(untouched(&s, sizeof s));
                return;
        }
        FUZZ_CHECK(s.params.id_len == strlen(s.params.device_id));
        FUZZ_CHECK(strlen(s.server) <= BUNDLE_SERVER_MAX);
        FUZZ_CHECK(!s.provisioned || vault_params_validate(&s.params) == 0);
        FUZZ_CHECK(ipc_encode_status(&s, out, sizeof out, &len) == 0);
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
        FUZZ_CHECK(ipc_decode_status(out, len, &again) == 0);
        FUZZ_CHECK(again.provisioned == s.provisioned && again.busy == s.busy);
        FUZZ_CHECK(strcmp(again.params.device_id, s.params.device_id) == 0);
        FUZZ_CHECK(strcmp(again.server, s.server) == 0);
        FUZZ_CHECK(again.params.n == s.params.n && again.params.m == s.params.m &&
                   again.params.p == s.params.p && again.params.profile == s.params.profile &&
                   again.params.epoch == s.params.epoch && again.params.kex == s.params.kex);
        FUZZ_CHECK(s.provisioned || s.params.kex == SV_KEX_NONE);
        FUZZ_CHECK(again.nv_index == s.nv_index && again.counter == s.counter &&
                   again.tpm_commands == s.tpm_commands);
}

static void fuzz_confirm(const uint8_t *data, size_t size) {
        struct ipc_confirm_result c;
        uint8_t out[IPC_PACKET_MAX];
        size_t len = 0;
        int r;

        memset(&c, POISON, sizeof c);
        r = ipc_decode_confirm(data, size, &c);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG);
                FUZZ_CHECK(untouched(&c, sizeof c));
                return;
        }
        FUZZ_CHECK(c.m5_len == SV_COMMIT_FRAME_LEN);
        FUZZ_CHECK(size == 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN + 2 * RECORD_SECRET_LEN + 8);
        FUZZ_CHECK(ipc_encode_confirm(&c, out, sizeof out, &len) == 0);
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
        /* The channel secrets are where the layout puts them, after M5 and the session key. */
        FUZZ_CHECK(memcmp(c.c2s, data + 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN, RECORD_SECRET_LEN) == 0);
        FUZZ_CHECK(memcmp(c.s2c, data + 2 + SV_COMMIT_FRAME_LEN + SV_KEY_LEN + RECORD_SECRET_LEN,
                          RECORD_SECRET_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_request(data, size);
        fuzz_reply(data, size);
        /* A reply's body is a STATUS or CONFIRM result: fuzz both with and without the header. */
        fuzz_status(data, size);
        fuzz_confirm(data, size);
        if (size >= IPC_HEADER_LEN) {
                fuzz_status(data + IPC_HEADER_LEN, size - IPC_HEADER_LEN);
                fuzz_confirm(data + IPC_HEADER_LEN, size - IPC_HEADER_LEN);
        }
        return 0;
}
