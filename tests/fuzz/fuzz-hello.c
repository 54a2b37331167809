/* SPDX-License-Identifier: MIT */
/* fuzz-hello: M1 as the server reads it, with or without the key share of revision 1.1 §10
 * (the length tells); whatever decodes must re-encode to the same bytes. */
#include <string.h>

#include "fuzz.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct msg_hello m;
        uint8_t out[SV_FRAME_MAX];
        size_t out_len = 0;

        memset(&m, 0xa5, sizeof m);
        if (wire_decode_hello(data, size, &m) < 0)
                return 0;

        FUZZ_CHECK(m.id_len >= SV_ID_MIN && m.id_len <= SV_ID_MAX);
        FUZZ_CHECK(strnlen(m.device_id, sizeof m.device_id) == m.id_len);
        FUZZ_CHECK(vault_device_id_valid(m.device_id, m.id_len));
        FUZZ_CHECK(m.kex == SV_KEX_NONE || m.kex == SV_KEX_X25519);
        FUZZ_CHECK(size == SV_HEADER_LEN + wire_body_len(SV_MSG_HELLO, &(struct wire_params) {
                                                              m.profile, m.kex, m.id_len, 0 }));
        /* The share is the last 32 bytes, as received. */
        FUZZ_CHECK(m.kex == SV_KEX_NONE || memcmp(m.share, data + size - SV_X25519_LEN, SV_X25519_LEN) == 0);
        FUZZ_CHECK(size <= SV_HELLO_FRAME_MAX);

        FUZZ_CHECK(wire_encode_hello(&m, out, sizeof out, &out_len) == 0);
        FUZZ_CHECK(out_len == size);
        FUZZ_CHECK(memcmp(out, data, size) == 0);
        /* An encoder never writes past the room it is given. */
        FUZZ_CHECK(wire_encode_hello(&m, out, size - 1, &out_len) < 0);
        return 0;
}
