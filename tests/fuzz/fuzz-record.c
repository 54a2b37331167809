/* SPDX-License-Identifier: MIT */
/*
 * fuzz-record: the data channel of protocol §11 as a receiver reads it. The input is the
 * byte stream of one direction; it is read frame by frame, header first (as a reader does
 * before it reads a body), by both receivers of one session (the server's c2s and the
 * device's s2c, so that every c2s record is also a reflection attempt on s2c).
 *
 * Invariants: the header check and record_open agree; a record opens only if it is exactly
 * the record the genuine sender seals at that position (a reference sender re-seals the
 * payload and must produce the same bytes); after a CLOSE nothing opens; a failed open
 * ends the chain for good, with its secret wiped. Then the input's first bytes go through
 * seal and open as a payload.
 *
 * S is that of the case x25519-small of tests/vectors/extensions.txt, so the case's records
 * (rec_c2s, close_c2s, rec_s2c, close_s2c) are genuine streams here and seed the corpus.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "record.h"

static const uint8_t session_s[32] = {
        0xd7, 0x35, 0xa0, 0x09, 0xfa, 0x4b, 0x64, 0x00,
        0x88, 0x7c, 0x18, 0x33, 0xdd, 0x70, 0xa3, 0xb4,
        0x49, 0x92, 0x83, 0x91, 0x81, 0x52, 0x9b, 0xbb,
        0xb6, 0x20, 0xa3, 0x53, 0xf3, 0x08, 0x67, 0x2b,
};

static void chain_from_s(enum record_dir dir, struct record_chain *c) {
        uint8_t a[RECORD_SECRET_LEN];

        FUZZ_CHECK(record_secret(session_s, dir, a) == 0);
        record_init(c, a);
}

static int all_zero(const uint8_t *p, size_t len) {
        uint8_t acc = 0;

        for (size_t i = 0; i < len; i++)
                acc |= p[i];
        return acc == 0;
}

/* The §11 header rules, written out again to hold record_header_check() to them. */
static int header_reference(const uint8_t *p, size_t len, size_t *frame_len) {
        size_t body;

        if (len < SV_HEADER_LEN)
                return -EBADMSG;
        if (p[0] != 1)
                return -EPROTONOSUPPORT;
        if (p[1] != 6 && p[1] != 7)
                return -EPROTO;
        body = (size_t) p[2] << 8 | p[3];
        if (body > 1024)
                return -EMSGSIZE;
        if (body < 16 || (p[1] == 7 && body != 16))
                return -EBADMSG;
        *frame_len = SV_HEADER_LEN + body;
        return p[1];
}

/* Reads the stream with the receiver of one direction until it ends or a record fails. */
static void read_stream(enum record_dir dir, const uint8_t *data, size_t size) {
        static uint8_t payload[RECORD_PAYLOAD_MAX], resealed[RECORD_FRAME_MAX];
        struct record_chain rx, tx;
        size_t pos = 0;
        int closed = 0;

        chain_from_s(dir, &rx);
        chain_from_s(dir, &tx);
        for (;;) {
                const uint8_t *p = data + pos;
                size_t rem = size - pos, frame_len = 0, ref_len = 0, got = 7777, sealed_len = 0;
                int h, ref, r;

                h = record_header_check(p, rem, &frame_len);
                ref = header_reference(p, rem, &ref_len);
                FUZZ_CHECK(h == ref);
                FUZZ_CHECK(h < 0 || frame_len == ref_len);

                r = record_open(&rx, p, h >= 0 && frame_len <= rem ? frame_len : rem, payload, sizeof payload, &got);
                if (closed) {
                        FUZZ_CHECK(r == -ESHUTDOWN);
                        break;
                }
                if (r < 0) {
                        FUZZ_CHECK(h < 0 ? r == h : r == -EBADMSG);
                        FUZZ_CHECK(got == 7777);
                        FUZZ_CHECK(rx.state == RECORD_FAILED && all_zero(rx.a, sizeof rx.a));
                        FUZZ_CHECK(record_open(&rx, p, rem, payload, sizeof payload, &got) == -EPIPE);
                        break;
                }
                /* Accepted: whole, of the header's type, and what the genuine sender sends. */
                FUZZ_CHECK(r == h && frame_len <= rem);
                FUZZ_CHECK(got == frame_len - SV_HEADER_LEN - SV_TAG_LEN);
                FUZZ_CHECK(record_seal(&tx, (uint8_t) r, payload, got, resealed, sizeof resealed, &sealed_len) == 0);
                FUZZ_CHECK(sealed_len == frame_len && memcmp(resealed, p, frame_len) == 0);
                FUZZ_CHECK(rx.seq == tx.seq);
                if (r == SV_MSG_CLOSE) {
                        FUZZ_CHECK(rx.state == RECORD_CLOSED && all_zero(rx.a, sizeof rx.a));
                        closed = 1;
                }
                pos += frame_len;
        }
        record_wipe(&rx);
        record_wipe(&tx);
}

/* The input's first bytes as one DATA payload: sealed, then opened by the other end. */
static void round_trip(const uint8_t *data, size_t size) {
        static uint8_t frame[RECORD_FRAME_MAX], out[RECORD_PAYLOAD_MAX];
        struct record_chain tx, rx;
        size_t len = size < RECORD_PAYLOAD_MAX ? size : RECORD_PAYLOAD_MAX, frame_len = 0, got = 0;

        chain_from_s(RECORD_S2C, &tx);
        chain_from_s(RECORD_S2C, &rx);
        FUZZ_CHECK(record_seal(&tx, SV_MSG_DATA, data, len, frame, sizeof frame, &frame_len) == 0);
        FUZZ_CHECK(frame_len == RECORD_FRAME_LEN(len));
        FUZZ_CHECK(record_open(&rx, frame, frame_len, out, sizeof out, &got) == SV_MSG_DATA);
        FUZZ_CHECK(got == len && (len == 0 || memcmp(out, data, len) == 0));
        /* The same bytes again are a replay. */
        FUZZ_CHECK(record_open(&rx, frame, frame_len, out, sizeof out, &got) == -EBADMSG);
        record_wipe(&tx);
        record_wipe(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        read_stream(RECORD_C2S, data, size);
        read_stream(RECORD_S2C, data, size);
        round_trip(data, size);
        return 0;
}
