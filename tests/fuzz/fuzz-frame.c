/* SPDX-License-Identifier: MIT */
/*
 * fuzz-frame: the frame header checks of protocol §3, which every receiver runs before
 * it reads or allocates a body. Checks that the three entry points agree with each other.
 */
#include <errno.h>

#include "fuzz.h"
#include "wire.h"

static const uint8_t frame_types[] = {
        0, SV_MSG_HELLO, SV_MSG_CHALLENGE, SV_MSG_RESPONSE, SV_MSG_CONFIRM, SV_MSG_COMMIT,
        6, SV_MSG_ERROR, 255,
};

/* The exact body length of the fixed-size messages, 0 for any length. */
static size_t fixed_body_len(uint8_t type) {
        switch (type) {
        case SV_MSG_CONFIRM: return SV_CONFIRM_BODY_LEN;
        case SV_MSG_COMMIT: return SV_COMMIT_BODY_LEN;
        case SV_MSG_ERROR: return SV_ERROR_BODY_LEN;
        default: return 0;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct wire_header h = { 0 };
        int hr, type;

        hr = wire_header_decode(data, size, &h);
        FUZZ_CHECK(hr == 0 || hr == -EBADMSG || hr == -EPROTONOSUPPORT || hr == -EMSGSIZE);
        if (hr == 0) {
                FUZZ_CHECK(size >= SV_HEADER_LEN);
                FUZZ_CHECK(h.version == SV_PROTO_VERSION);
                FUZZ_CHECK(h.length <= SV_BODY_MAX);
        } else if (size < SV_HEADER_LEN)
                FUZZ_CHECK(hr == -EBADMSG);

        type = wire_frame_type(data, size);
        FUZZ_CHECK(hr < 0 ? type == hr : type == h.type);

        for (size_t i = 0; i < sizeof frame_types; i++) {
                uint8_t t = frame_types[i];
                size_t want = fixed_body_len(t);
                const size_t lens[] = { 0, want, h.length, (size_t) h.length + 1 };

                for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
                        int r = wire_frame_check(data, size, t, lens[j]);

                        if (hr < 0) {
                                FUZZ_CHECK(r == hr);
                                continue;
                        }
                        if (r == 0) {
                                /* Accepted: the header names this type and the frame is exactly whole. */
                                FUZZ_CHECK(h.type == t);
                                FUZZ_CHECK(size == SV_HEADER_LEN + (size_t) h.length);
                                FUZZ_CHECK(lens[j] == 0 || lens[j] == h.length);
                        } else if (h.type != t)
                                FUZZ_CHECK(r == -EPROTO);
                        else
                                FUZZ_CHECK(r == -EBADMSG);
                }

                if (t == SV_MSG_RESPONSE || t == SV_MSG_CONFIRM || t == SV_MSG_COMMIT) {
                        const uint8_t *body = NULL;
                        size_t body_len = want ? want : (hr == 0 && h.length ? h.length : 1);
                        int r = wire_decode_sealed(data, size, t, body_len, &body);

                        if (r == 0) {
                                FUZZ_CHECK(body == data + SV_HEADER_LEN);
                                FUZZ_CHECK(size == SV_HEADER_LEN + body_len);
                        }
                        FUZZ_CHECK(wire_decode_sealed(data, size, t, 0, &body) == -EINVAL);
                }
        }
        return 0;
}
