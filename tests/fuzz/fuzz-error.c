/* SPDX-License-Identifier: MIT */
/* fuzz-error: the ERROR frame a device may receive at any step. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t code = 0, out[SV_FRAME_MAX];
        size_t out_len = 0;
        int r;

        r = wire_decode_error(data, size, &code);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EPROTO || r == -EPROTONOSUPPORT || r == -EMSGSIZE);
                return 0;
        }
        FUZZ_CHECK(code >= SV_ERR_PROTOCOL && code <= SV_ERR_VERSION);
        FUZZ_CHECK(size == SV_ERROR_FRAME_LEN);
        FUZZ_CHECK(strcmp(wire_error_name(code), "unknown error") != 0);

        FUZZ_CHECK(wire_encode_error(code, out, sizeof out, &out_len) == 0);
        FUZZ_CHECK(out_len == size);
        FUZZ_CHECK(memcmp(out, data, size) == 0);
        return 0;
}
