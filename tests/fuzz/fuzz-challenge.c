/* SPDX-License-Identifier: MIT */
/*
 * fuzz-challenge: M2 as the device reads it. The first 3 bytes choose the receiver's
 * vault shape (the top bit of byte 0 kex x25519, revision 1.1 §10; the other 15 bits u16 n
 * clamped to 8..4096; u8 p clamped to 1..64 and 2p <= n); the rest is the frame. Whatever
 * decodes must be a valid challenge, with the share exactly when the vault has one, and
 * re-encode identically.
 */
#include <string.h>

#include "fuzz.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct msg_challenge m;
        struct vault_params v;
        uint8_t out[SV_FRAME_MAX];
        size_t out_len = 0;
        unsigned n, p, kex;

        if (size < 3)
                return 0;
        kex = data[0] & 0x80 ? SV_KEX_X25519 : SV_KEX_NONE;
        n = (unsigned) (data[0] & 0x7f) << 8 | data[1];
        n = n < SV_N_MIN ? SV_N_MIN : n > SV_N_MAX ? SV_N_MAX : n;
        p = data[2];
        p = p < SV_P_MIN ? SV_P_MIN : p > SV_P_MAX ? SV_P_MAX : p;
        if (2 * p > n)
                p = n / 2;
        data += 3;
        size -= 3;

        memset(&m, 0xa5, sizeof m);
        v = (struct vault_params) { .profile = SV_PROFILE_HARDENED, .n = (uint16_t) n, .p = (uint8_t) p,
                                    .kex = (uint8_t) kex };
        if (wire_decode_challenge(data, size, &v, &m) < 0)
                return 0;

        FUZZ_CHECK(size == SV_HEADER_LEN + vault_body_len(SV_MSG_CHALLENGE, &v));
        FUZZ_CHECK(challenge_validate(&m.c1, (uint16_t) n, (uint8_t) p) == 0);
        FUZZ_CHECK(m.kex == kex);
        FUZZ_CHECK(kex == SV_KEX_NONE || memcmp(m.share, data + size - SV_X25519_LEN, SV_X25519_LEN) == 0);

        FUZZ_CHECK(wire_encode_challenge(&m, out, sizeof out, &out_len) == 0);
        FUZZ_CHECK(out_len == size);
        FUZZ_CHECK(memcmp(out, data, size) == 0);
        FUZZ_CHECK(wire_encode_challenge(&m, out, size - 1, &out_len) < 0);
        return 0;
}
