/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "bundle.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len) {
        return (len + 2) / 3 * 4;
}

void base64_encode(const uint8_t *in, size_t len, char *out) {
        size_t i = 0, o = 0;

        for (; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

                out[o++] = b64_alphabet[v >> 18 & 63];
                out[o++] = b64_alphabet[v >> 12 & 63];
                out[o++] = b64_alphabet[v >> 6 & 63];
                out[o++] = b64_alphabet[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < len ? (uint32_t) in[i + 1] << 8 : 0);

                out[o++] = b64_alphabet[v >> 18 & 63];
                out[o++] = b64_alphabet[v >> 12 & 63];
                out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
}

/*
 * The value of one base64 character, or -1, computed without branches or table
 * look-ups indexed by the character, so that decoding a vault leaks nothing through
 * timing or the cache (the technique of libsodium and wireguard-tools).
 */
static int b64_value(unsigned char ch) {
        int c = ch, ret = -1;

        ret += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 64);
        ret += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 70);
        ret += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5);
        ret += (((0x2a - c) & (c - 0x2c)) >> 8) & 63;
        ret += (((0x2e - c) & (c - 0x30)) >> 8) & 64;
        return ret;
}

int base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *ret_len) {
        size_t pad = 0, len, o = 0;
        int bad = 0;

        if (in_len == 0 || in_len % 4 != 0)
                return -EINVAL;
        /* Padding is public structure: branching on it is fine. */
        if (in[in_len - 1] == '=')
                pad++;
        if (in[in_len - 2] == '=')
                pad++;
        len = in_len / 4 * 3 - pad;
        if (len > out_cap)
                return -ENOBUFS;

        for (size_t i = 0; i < in_len; i += 4) {
                bool last = i + 4 == in_len;
                int a = b64_value(in[i]), b = b64_value(in[i + 1]);
                int c = last && pad == 2 ? 0 : b64_value(in[i + 2]);
                int d = last && pad >= 1 ? 0 : b64_value(in[i + 3]);
                uint32_t v;

                bad |= (a | b | c | d) < 0;
                v = (uint32_t) (a & 63) << 18 | (uint32_t) (b & 63) << 12 | (uint32_t) (c & 63) << 6 | (uint32_t) (d & 63);
                if (last && pad > 0) {
                        /* Canonical form: the bits under the padding are zero. */
                        bad |= pad == 2 ? (v & 0xffff) != 0 : (v & 0xff) != 0;
                        out[o++] = (uint8_t) (v >> 16);
                        if (pad == 1)
                                out[o++] = (uint8_t) (v >> 8);
                } else {
                        out[o++] = (uint8_t) (v >> 16);
                        out[o++] = (uint8_t) (v >> 8);
                        out[o++] = (uint8_t) v;
                }
        }
        if (bad) {
                for (size_t i = 0; i < o; i++)
                        ((volatile uint8_t *) out)[i] = 0;
                return -EINVAL;
        }
        *ret_len = len;
        return 0;
}
